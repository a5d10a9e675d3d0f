"""The promotion rules of the registrations.

A new version gets the ``champion`` alias only when it holds up against the current champion
scored *now*, on the same held-out data; otherwise it becomes the ``challenger``. The
deblurrer's rule (``promote_with_evidence``) asks for evidence: on paired per-image scores,
the lower bound of a 95% bootstrap interval of the gain must clear a margin, against the
champion and against the shipped floor. The detector's rule compares one score
(``promote_by_score``).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

CHAMPION, CHALLENGER = "champion", "challenger"


def bootstrap_ci(diffs: Sequence[float], level: float = 0.95, n_boot: int = 4000,
                 seed: int = 0) -> dict:
    """Mean of paired differences with a percentile bootstrap interval: the evidence a
    promotion (or a benchmark row) rests on, with the number of pairs it came from."""
    d = np.asarray([x for x in diffs if np.isfinite(x)], np.float64)
    if d.size == 0:
        return {"mean": None, "low": None, "high": None, "n": 0}
    if d.size == 1:
        v = round(float(d[0]), 4)
        return {"mean": v, "low": v, "high": v, "n": 1}
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, (n_boot, d.size))].mean(axis=1)
    alpha = (1 - level) / 2
    return {"mean": round(float(d.mean()), 4),
            "low": round(float(np.quantile(means, alpha)), 4),
            "high": round(float(np.quantile(means, 1 - alpha)), 4), "n": int(d.size)}


def bootstrap_gap_ci(a: Sequence[float], b: Sequence[float], level: float = 0.95,
                     n_boot: int = 4000, seed: int = 0) -> dict:
    """mean(a) - mean(b) for two independent samples (e.g. the gain on training families minus
    the gain on the held-out family), each resampled on its own."""
    x, y = (np.asarray([v for v in s if np.isfinite(v)], np.float64) for s in (a, b))
    if x.size == 0 or y.size == 0:
        return {"mean": None, "low": None, "high": None, "n": int(x.size + y.size)}
    rng = np.random.default_rng(seed)
    diff = (x[rng.integers(0, x.size, (n_boot, x.size))].mean(axis=1)
            - y[rng.integers(0, y.size, (n_boot, y.size))].mean(axis=1))
    alpha = (1 - level) / 2
    return {"mean": round(float(x.mean() - y.mean()), 4),
            "low": round(float(np.quantile(diff, alpha)), 4),
            "high": round(float(np.quantile(diff, 1 - alpha)), 4), "n": int(x.size + y.size)}


def promote_by_score(client, name: str, version: str, metric: str, new_score: float,
                     score_champion: Callable[[str], float], ties_win: bool = False,
                     floor: tuple[str, float] | None = None) -> dict:
    """Alias version champion if it beats (ties_win: matches) the champion, or, when there is
    none yet, matches the floor: (what, score), e.g. the shipped pretrained model scored on the
    same pairs, which the default model chain falls back to. Without a floor, the first
    version is champion.

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
    if champion is None and floor is not None:
        what, bar = floor
        decision.update(floor=what, floor_score=bar)
        if new_score >= bar:
            alias, reason = CHAMPION, (f"no champion yet; matches or beats {what} "
                                       f"({new_score:.4f} >= {bar:.4f} {metric})")
        else:
            alias, reason = CHALLENGER, (f"no champion yet, but falls short of {what} "
                                         f"({new_score:.4f} < {bar:.4f} {metric}), which "
                                         f"stays the default")
    elif champion is None:
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


def paired_gain(new: dict[str, float], other: dict[str, float], n_boot: int = 2000,
                seed: int = 0) -> dict:
    """new - other on the pairs both were scored on: mean, 95% interval, number of pairs."""
    common = [k for k in new if k in other]
    return bootstrap_ci([new[k] - other[k] for k in common], n_boot=n_boot, seed=seed)


def _evidence_words(what: str, c: dict, unit: str) -> str:
    if c["mean"] is None:
        return f"{what}: no common pairs"
    return (f"{what} {c['mean']:+.3f} {unit} [{c['low']:+.3f}, {c['high']:+.3f}] "
            f"over {c['n']} pairs")


def promote_with_evidence(client, name: str, version: str, new_scores: dict[str, float],
                          score_champion: Callable[[str], dict[str, float]],
                          floor: tuple[str, dict[str, float]] | None = None,
                          margin: float = 0.0, n_boot: int = 2000, unit: str = "dB") -> dict:
    """Alias version champion only when, on paired per-pair scores ({pair_id: score}), the
    lower bound of the 95% bootstrap interval of its gain exceeds margin against the current
    champion (scored now by score_champion(uri)) and against the floor (what, scores): the
    model users get without a champion. Otherwise challenger. Returns the decision with every
    interval and its number of pairs."""
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        champion = None
    comparisons: dict = {}
    if floor is not None:
        comparisons["floor"] = {"what": floor[0], **paired_gain(new_scores, floor[1], n_boot)}
    if champion is not None:
        champ = score_champion(f"models:/{name}@{CHAMPION}")
        comparisons["champion"] = {"what": f"champion v{champion.version}",
                                   "version": int(champion.version),
                                   **paired_gain(new_scores, champ, n_boot)}
    words = "; ".join(_evidence_words(c["what"], c, unit) for c in comparisons.values())
    short = [c["what"] for c in comparisons.values() if c["low"] is None or c["low"] <= margin]
    if not comparisons:
        alias, reason = CHAMPION, "no champion yet and no floor to compare with"
    elif short:
        alias = CHALLENGER
        reason = (f"not better with evidence than {' and '.join(short)} (95% lower bound <= "
                  f"margin {margin:g} {unit}): {words}")
    else:
        alias = CHAMPION
        reason = f"better with evidence (95% lower bounds > margin {margin:g} {unit}): {words}"
    client.set_registered_model_alias(name, alias, version)
    return {"alias": alias, "reason": reason, "margin": margin, "unit": unit,
            "pairs": len(new_scores), "comparisons": comparisons,
            "champion_version": int(champion.version) if champion is not None else None}
