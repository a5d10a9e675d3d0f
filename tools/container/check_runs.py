"""After the training pipeline in containers: the MLflow server holds every step's run (the
quality gate, training with evaluate/register, the detector), each tagged with the image's
commit and digest and the submitter's commit. One line; exit 2 when one is missing.

python check_runs.py IMAGE   (MLFLOW_TRACKING_URI points at the server)
"""

import sys

import mlflow

STEPS = ("validate", "train", "detector")
TAGS = ("gir.image_commit", "gir.image_digest", "gir.submitter_commit", "gir.image")


def main(image: str) -> None:
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    found = {}
    for run in runs:
        step = run.data.tags.get("gir.step")
        if step in STEPS and run.data.tags.get("engine") == "kfp-docker":
            found[step] = run
    missing = [s for s in STEPS if s not in found]
    untagged = [f"{s}:{t}" for s, r in found.items() for t in TAGS if not r.data.tags.get(t)]
    wrong = [s for s, r in found.items() if r.data.tags.get("gir.image") != image]
    if missing or untagged or wrong:
        sys.exit(f"container-demo: error: MLflow runs: missing {missing}, untagged {untagged}, "
                 f"other image {wrong}")
    t = found["train"].data.tags
    print(f"MLflow: runs of {', '.join(STEPS)} (quality gate included), each tagged image "
          f"commit {t['gir.image_commit'][:12]}, digest {t['gir.image_digest'][:19]}, "
          f"submitter commit {t['gir.submitter_commit'][:12]}")


if __name__ == "__main__":
    main(sys.argv[1])
