"""Kubeflow components: one per pipeline step, each a thin caller of the same `gir` function
the CLI and dvc.yaml run. See components/steps.py (training) and components/rectify.py (the
gir-rectify batch); the image they run in is set in settings.py.
"""

from components.rectify import list_shards, rectify_shard, summarize
from components.settings import IMAGE
from components.steps import (detector, evaluate, ingest, preprocess, register, split,
                              sweep_register, train, validate)

STEPS = [ingest, validate, preprocess, split, train, evaluate, register, detector]
RECTIFY = [list_shards, rectify_shard, summarize]

__all__ = ["IMAGE", "STEPS", "ingest", "validate", "preprocess", "split", "train", "evaluate",
           "register", "detector", "sweep_register", "RECTIFY", "list_shards", "rectify_shard",
           "summarize"]
