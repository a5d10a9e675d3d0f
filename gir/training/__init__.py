"""The machinery of the train step, split along its seams (as BasicSR separates model and loop).

trainer.py (models, optimisers, schedule, EMA, one step), checkpoints.py (fingerprint, save,
load), distributed.py (torchrun), loop.py (the loop, validation, the per-step log) and
trackers.py (where a run's record goes: MLflow, nowhere, or a JSON record). The step itself,
``gir.steps.train.train``, wires them together. Only trackers.MlflowTracker touches MLflow, and
it imports it lazily, so everything here runs on a machine with torch but no MLflow.
"""
