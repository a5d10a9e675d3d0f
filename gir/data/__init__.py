"""Data: sources, the manifest, file facts, image I/O, blur synthesis, training datasets.

No MLflow, DVC or KFP here; only gir.config and gir.errors from above."""
