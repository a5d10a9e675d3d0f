"""Legacy import path, kept on purpose: models registered before the package layout (0.1)
carry an entry file that runs ``from gir.registry import GirDeblurModel``. New models point
at gir/serving/mlflow_model.py. Nothing in gir imports this module.
"""

from gir.tracking.pyfunc import GirDeblurModel  # noqa: F401
