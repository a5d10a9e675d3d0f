"""The promotion rule the deblurrer's and the detector's registrations share.

A new version gets the ``champion`` alias only when it holds up against the current champion
scored *now*, on the same held-out data; otherwise it becomes the ``challenger``.
"""

from __future__ import annotations

from typing import Callable

CHAMPION, CHALLENGER = "champion", "challenger"


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
