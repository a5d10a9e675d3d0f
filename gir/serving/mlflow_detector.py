"""Entry file for MLflow's models-from-code logging of the blur detector (see mlflow_model.py)."""

import mlflow

from gir.tracking.pyfunc import GirDetectorModel

mlflow.models.set_model(GirDetectorModel())
