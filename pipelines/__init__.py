"""The GIR Kubeflow pipelines and how they are compiled, run locally and submitted to a
cluster: `gir` (gir_pipeline.py, training: the same steps as dvc.yaml) and `gir-rectify`
(rectify_pipeline.py, batch rectification of an S3 prefix). `gir pipeline ...` is the
command-line face of these functions.
"""

from pipelines.gir_pipeline import (
                                    build_pipeline,
                                    build_sweep_pipeline,
                                    compile_pipeline,
                                    create_recurring_run,
                                    param_defaults,
                                    run_local,
                                    run_sweep_local,
                                    submit,
)
from pipelines.rectify_pipeline import (
                                    build_rectify_pipeline,
                                    compile_rectify,
                                    rectify_arguments,
                                    run_rectify_local,
                                    schedule_rectify,
                                    submit_rectify,
)

__all__ = ["build_pipeline", "build_sweep_pipeline", "compile_pipeline", "create_recurring_run",
           "param_defaults", "run_local", "run_sweep_local", "submit", "build_rectify_pipeline",
           "compile_rectify", "rectify_arguments", "run_rectify_local", "schedule_rectify",
           "submit_rectify"]
