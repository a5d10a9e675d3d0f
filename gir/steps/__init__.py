"""The pipeline steps, one module each, named after the step: ingest, validate, preprocess,
split, train, evaluate, register, and the detector. The CLI, DVC stages, KFP components and
tests all call these functions."""
