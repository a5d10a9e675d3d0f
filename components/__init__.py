"""Kubeflow components: one per pipeline step, each a thin caller of the same `gir` function
the CLI and dvc.yaml run. See components/steps.py (training) and components/rectify.py (the
gir-rectify batch); the image they run in is set in settings.py.
"""

import os

from components.settings import IMAGE

# Inside a running component (kfp's executor sets _KFP_RUNTIME) kfp.dsl has no `component`
# decorator: a body that imports components.settings must not define the components again.
if os.environ.get("_KFP_RUNTIME", "false") != "true":
    from components.rectify import list_shards, rectify_shard, summarize
    from components.steps import (
        detector,
        evaluate,
        ingest,
        preprocess,
        register,
        split,
        sweep_register,
        train,
        validate,
    )

    STEPS = [ingest, validate, preprocess, split, train, evaluate, register, detector]
    RECTIFY = [list_shards, rectify_shard, summarize]

__all__ = ["IMAGE", "STEPS", "ingest", "validate", "preprocess", "split", "train", "evaluate",
           "register", "detector", "sweep_register", "RECTIFY", "list_shards", "rectify_shard",
           "summarize"]
