"""Typed view of params.yaml: every knob of the workflow, checked once at load time.

schema.py says what the knobs are, check.py checks a mapping against it, load.py reads
params.yaml and ``--set`` overrides. Callers import from here.
"""

from gir.config.load import (  # noqa: F401
                             apply_override,
                             flatten,
                             load_params,
                             params_from_dict,
                             params_from_struct,
                             parse_override,
                             to_dict,
)
from gir.config.schema import (
                             DEFAULT_PARAMS,
                             ConfigError,
                             DataConfig,
                             DetectConfig,
                             EvaluateConfig,
                             FolderConfig,
                             GoproConfig,
                             LossConfig,
                             MlflowConfig,
                             ModelConfig,
                             Params,
                             PreprocessConfig,
                             RegisterConfig,
                             SampleConfig,
                             SplitConfig,
                             SynthConfig,
                             TrainConfig,  # noqa: F401
                             UnsplashConfig,
                             ValidateConfig,
)
