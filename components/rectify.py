"""The `gir-rectify` batch pipeline's components: list + shard, rectify one shard, summarise.

Each is a thin caller of gir.rectifier.batch, the same code as `gir rectify SRC -o DST`,
`gir watch` and the S3 event endpoint, so the ledger in DST/_gir/ is shared with them: a shard
that is retried, or a scheduled run that overlaps what a watcher did, redoes nothing.
`model` is a model directory or MLflow URI; empty means the default chain (the registry
champion); `ensemble` is its self-ensemble (1, 2, 4 or 8 views). `endpoint_url` points S3
access at MinIO when set.
"""

from kfp import dsl
from kfp.dsl import Metrics, Output

from components.settings import IMAGE

component = dsl.component(base_image=IMAGE, install_kfp_package=False)


@component
def list_shards(source: str, dest: str, task: str, model: str, ensemble: int, shards: int,
                reprocess: bool, endpoint_url: str, run_id: str) -> list:
    """The inputs to process, as at most `shards` lists (the plan goes to DST/_gir/runs/)."""
    from components.settings import preflight

    preflight()

    from gir.data.storage import use_endpoint
    from gir.rectifier.batch import plan_shards
    from gir.tracking.resolve import resolve_deblurrer_with_source

    use_endpoint(endpoint_url)
    return plan_shards(source, dest, shards, task,
                       lambda: resolve_deblurrer_with_source(model or None, ensemble=ensemble),
                       reprocess=reprocess, run_id=run_id)


@component
def rectify_shard(source: str, dest: str, task: str, model: str, ensemble: int, reprocess: bool,
                  endpoint_url: str, run_id: str, shard: dict, counts: Output[Metrics]):
    """Rectify (or deblur) the inputs of one shard into dest, through the ledger."""
    from components.settings import preflight

    preflight()

    from gir.data.storage import use_endpoint
    from gir.rectifier.batch import run_batch, shard_report_name
    from gir.tracking.resolve import resolve_deblurrer_with_source, resolve_detector

    use_endpoint(endpoint_url)
    report = run_batch([source], dest, task,
                       lambda: resolve_deblurrer_with_source(model or None, ensemble=ensemble),
                       resolve_detector() if task == "rectify" else None, reprocess=reprocess,
                       only=list(shard["inputs"]),
                       report_name=shard_report_name(run_id, shard["index"]))
    for name, value in report["counts"].items():
        counts.log_metric(name, value)


@component
def summarize(dest: str, endpoint_url: str, run_id: str, totals: Output[Metrics]) -> dict:
    """Merge the plan and shard reports into DST/_gir/report.json; returns the counts."""
    from components.settings import preflight

    preflight()

    from gir.data.storage import use_endpoint
    from gir.rectifier.batch import merge_reports

    use_endpoint(endpoint_url)
    report = merge_reports(dest, run_id)
    for name, value in report["counts"].items():
        totals.log_metric(name, value)
    return report["counts"]
