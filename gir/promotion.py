"""What the deblurrer's and the detector's registries share: pyfunc logging and honest promotion.

Both log a models-from-code pyfunc (a file, not a pickle) and give a new version the
``champion`` alias only when it holds up against the current champion scored *now*, on the same
held-out data; otherwise it becomes the ``challenger``. Kept free of torch so the detector's
path stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

CHAMPION, CHALLENGER = "champion", "challenger"


def pyfunc_base():
    """mlflow.pyfunc.PythonModel, imported here so callers define their model classes lazily."""
    import warnings

    # Signatures are declared explicitly in log_code_model; MLflow's nudge towards an input
    # example is noise in every command's output.
    warnings.filterwarnings("ignore", message=".*input example was not provided.*")
    import mlflow.pyfunc

    return mlflow.pyfunc.PythonModel


def requirements() -> list[str]:
    """Pinned versions of what a GIR pyfunc needs (whatever of them is installed here)."""
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    for pkg in ("gir", "torch", "mlflow", "numpy", "pillow", "pandas", "scikit-image"):
        try:
            reqs.append(f"{pkg}=={version(pkg)}")
        except PackageNotFoundError:
            pass
    return reqs


def log_code_model(mlflow, code_file: str | Path, artifacts: dict[str, str],
                   outputs: list[tuple[str, str]]):
    """Log code_file (which calls mlflow.models.set_model) as the run's pyfunc 'model'.

    Input is always a string column ``image`` (base64 file bytes, any size); outputs are
    (type, name) columns.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    signature = ModelSignature(inputs=Schema([ColSpec("string", "image")]),
                               outputs=Schema([ColSpec(t, n) for t, n in outputs]))
    return mlflow.pyfunc.log_model(name="model", python_model=str(code_file),
                                   artifacts={k: str(v) for k, v in artifacts.items()},
                                   signature=signature, pip_requirements=requirements())


def promote_by_score(client, name: str, version: str, metric: str, new_score: float,
                     score_champion: Callable[[str], float], ties_win: bool = False) -> dict:
    """Alias version champion if there is none or it beats (ties_win: matches) the champion.

    score_champion(uri) scores the current champion now, on the data new_score came from.
    Returns the decision (alias, reason, champion version and score).
    """
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        champion = None
    decision = {"metric": metric, "new_score": new_score, "champion_version": None,
                "champion_score": None}
    if champion is None:
        alias, reason = CHAMPION, "no champion yet"
    else:
        champ_score = score_champion(f"models:/{name}@{CHAMPION}")
        decision.update(champion_version=int(champion.version), champion_score=champ_score)
        wins = new_score >= champ_score if ties_win else new_score > champ_score
        if ties_win:
            verb, op = ("matches or beats", ">=") if wins else ("falls short of", "<")
        else:
            verb, op = ("beats", ">") if wins else ("does not beat", "<=")
        alias = CHAMPION if wins else CHALLENGER
        reason = (f"{verb} champion v{champion.version} "
                  f"({new_score:.4f} {op} {champ_score:.4f} {metric})")
    client.set_registered_model_alias(name, alias, version)
    decision.update(alias=alias, reason=reason)
    return decision
