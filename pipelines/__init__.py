"""The GIR Kubeflow pipeline: the DAG (gir_pipeline.py) and how it is compiled, run locally
and submitted to a cluster. `gir pipeline ...` is the command-line face of these functions.
"""

from pipelines.gir_pipeline import (build_pipeline, compile_pipeline, param_defaults, run_local,
                                    submit)

__all__ = ["build_pipeline", "compile_pipeline", "param_defaults", "run_local", "submit"]
