"""Entry file for MLflow's models-from-code logging: the pyfunc is GIR's deblurring model.

Logging a file instead of a pickled object keeps the registered model loadable by any
environment where `gir` is installed (the image, the venv), with no cloudpickle involved.
"""

import mlflow

from gir.tracking.pyfunc import GirDeblurModel

mlflow.models.set_model(GirDeblurModel())
