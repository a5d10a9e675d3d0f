"""Entry file for MLflow's models-from-code logging of the blur detector (see mlflow_model.py)."""

import mlflow

from gir.detect_train import GirDetectorModel

mlflow.models.set_model(GirDetectorModel())
