"""Legacy import path, kept on purpose: detectors registered before the package layout (0.1)
carry an entry file that runs ``from gir.detect_train import GirDetectorModel``. New models
point at gir/serving/mlflow_detector.py. Nothing in gir imports this module.
"""

from gir.tracking.pyfunc import GirDetectorModel  # noqa: F401
