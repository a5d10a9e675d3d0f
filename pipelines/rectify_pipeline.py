"""`gir-rectify`: the batch pipeline that runs the registry champion over an S3 prefix.

list_shards reads the source prefix and the destination's ledger and splits what is new into
shards; a dsl.ParallelFor runs rectify_shard on each (the same gir.rectifier.batch code as
`gir rectify SRC -o DST`); summarize merges the shard reports into DST/_gir/report.json.
Caching is off (the same arguments mean a different listing tomorrow); retrying a shard is
safe because the ledger skips what a first attempt finished. Scheduled with
`gir pipeline schedule --cron`, it keeps a bucket's deblurred prefix current.

Parameters: source (s3://bucket/prefix/), dest (s3:// prefix), task (rectify | deblur), model
(a models:/ URI or directory; empty = the registry champion), ensemble (the model's
self-ensemble: 1, 2, 4 or 8 views), shards, reprocess, endpoint_url (an S3-compatible endpoint
such as MinIO; empty = AWS).
"""


import time
from pathlib import Path

from pipelines.environment import configure as configure_env
from pipelines.gir_pipeline import create_recurring_run, create_run, local_engine, run_locally

PIPELINE_NAME = "gir-rectify"
DEFAULTS = {"source": "", "dest": "", "task": "rectify", "model": "", "ensemble": 1,
            "shards": 4, "reprocess": False, "endpoint_url": ""}
RESOURCES = {"rectify-shard": ("2", "8G")}
DEFAULT_RESOURCES = ("1", "2G")
SHARD_RETRIES = 2


def rectify_arguments(values: dict) -> dict:
    """The pipeline's arguments: DEFAULTS overridden by the given values that are not None."""
    unknown = set(values) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown gir-rectify parameters: {sorted(unknown)}")
    return {**DEFAULTS, **{k: v for k, v in values.items() if v is not None}}


def build_rectify_pipeline(defaults: dict | None = None, image: str | None = None,
                           engine: str = "kfp"):
    """The pipeline function; defaults become the compiled parameters' defaults."""
    from kfp import dsl

    from components import IMAGE
    from components.rectify import list_shards, rectify_shard, summarize

    d = rectify_arguments(defaults or {})

    def step(op, **inputs):
        t = op(**inputs)
        t.set_caching_options(False)
        cpu, memory = RESOURCES.get(op.name, DEFAULT_RESOURCES)
        t.set_cpu_request(cpu).set_memory_request(memory)
        if image:
            t.set_container_image(image)
        configure_env(t, op.name, engine, image or IMAGE)
        return t

    @dsl.pipeline(name=PIPELINE_NAME,
                  description="Rectify new photos under an S3 prefix with the registry "
                              "champion: list and shard, a ParallelFor of shards, a summary.")
    def gir_rectify(source: str = d["source"], dest: str = d["dest"], task: str = d["task"],
                    model: str = d["model"], ensemble: int = d["ensemble"],
                    shards: int = d["shards"], reprocess: bool = d["reprocess"],
                    endpoint_url: str = d["endpoint_url"]):
        run_id = dsl.PIPELINE_JOB_ID_PLACEHOLDER
        common = dict(source=source, dest=dest, task=task, model=model, ensemble=ensemble,
                      reprocess=reprocess, endpoint_url=endpoint_url, run_id=run_id)
        listed = step(list_shards, shards=shards, **common)
        with dsl.ParallelFor(listed.output) as shard:
            done = step(rectify_shard, shard=shard, **common)
            if engine == "kfp":   # on a cluster a failure may be transient; locally it is not
                done.set_retry(num_retries=SHARD_RETRIES, backoff_duration="30s")
        step(summarize, dest=dest, endpoint_url=endpoint_url, run_id=run_id).after(done)

    return gir_rectify


def compile_rectify(out: str | Path, values: dict | None = None,
                    image: str | None = None) -> Path:
    from kfp import compiler

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline_func=build_rectify_pipeline(values, image),
                                package_path=str(out))
    return out


def run_rectify_local(values: dict, root: str | Path = "pipeline_root",
                      runner: str = "subprocess", image: str | None = None) -> Path:
    """Run gir-rectify here with KFP's local runner (subprocess or docker); returns the run's
    artifact folder."""
    engine = local_engine(runner, image)
    return run_locally(lambda: build_rectify_pipeline(values, image, engine=engine)(
        **rectify_arguments(values)), root, runner)


def submit_rectify(host: str, values: dict, experiment: str = "gir",
                   run_name: str | None = None, image: str | None = None) -> str:
    return create_run(host, lambda path: compile_rectify(path, values, image),
                      rectify_arguments(values), experiment,
                      run_name or f"gir-rectify {time.strftime('%Y-%m-%d %H:%M:%S')}")


def schedule_rectify(host: str, values: dict, cron: str, experiment: str = "gir",
                     name: str | None = None, image: str | None = None) -> str:
    return create_recurring_run(host, lambda path: compile_rectify(path, values, image),
                                rectify_arguments(values), experiment,
                                name or "gir-rectify", cron)
