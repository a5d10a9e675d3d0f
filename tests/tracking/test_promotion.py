"""The promotion rule: a champion must beat the champion, and the first one the shipped model."""

from mlflow import MlflowClient

from gir.tracking.promotion import promote_by_score


def _versions(mlflow_uri, n):
    client = MlflowClient()
    client.create_registered_model("m")
    return client, [client.create_model_version("m", "file:///tmp/none").version for _ in range(n)]


def test_the_first_version_must_match_the_shipped_model(mlflow_uri):
    client, (v1, v2) = _versions(mlflow_uri, 2)
    worse = promote_by_score(client, "m", v1, "psnr", 25.90, lambda uri: 0.0,
                             floor=("the shipped pretrained model", 25.96))
    assert worse["alias"] == "challenger" and "falls short of the shipped" in worse["reason"]
    better = promote_by_score(client, "m", v2, "psnr", 26.10, lambda uri: 0.0,
                              floor=("the shipped pretrained model", 25.96))
    assert better["alias"] == "champion" and better["floor_score"] == 25.96
    assert client.get_model_version_by_alias("m", "champion").version == v2


def test_later_versions_face_the_champion_rescored(mlflow_uri):
    client, (v1, v2) = _versions(mlflow_uri, 2)
    assert promote_by_score(client, "m", v1, "psnr", 26.0, lambda uri: 0.0)["alias"] == "champion"
    d = promote_by_score(client, "m", v2, "psnr", 26.5, lambda uri: 27.0, floor=("x", 1.0))
    assert d["alias"] == "challenger" and d["champion_score"] == 27.0


# --------------------------------------------------------------------------- with evidence


def _scores(mean, spread, n=40, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return {f"p{i}": 25.0 + v for i, v in enumerate(rng.normal(mean, spread, n))}


def test_bootstrap_interval_brackets_the_mean_and_counts_pairs():
    from gir.tracking.promotion import bootstrap_ci, bootstrap_gap_ci

    assert bootstrap_ci([0.3] * 10) == {"mean": 0.3, "low": 0.3, "high": 0.3, "n": 10}
    noisy = bootstrap_ci(list(_scores(0.0, 1.0, 200).values()))
    assert noisy["low"] < 25.0 < noisy["high"] and noisy["n"] == 200
    assert bootstrap_ci([])["n"] == 0
    gap = bootstrap_gap_ci([2.0, 2.2, 1.8], [1.0, 1.1, 0.9])
    assert gap["low"] > 0.5 and gap["mean"] == 1.0


def test_champion_needs_an_interval_above_the_margin(mlflow_uri):
    from gir.tracking.promotion import promote_with_evidence

    client, (v1, v2, v3) = _versions(mlflow_uri, 3)
    shipped = _scores(0.0, 1.0, seed=1)
    better = {k: v + 0.5 for k, v in shipped.items()}  # +0.5 dB on every pair
    d1 = promote_with_evidence(client, "m", v1, better, lambda uri: {},
                               floor=("the shipped model", shipped), margin=1.0)
    assert d1["alias"] == "challenger" and "margin 1" in d1["reason"]  # not by 1 dB
    d2 = promote_with_evidence(client, "m", v2, better, lambda uri: {},
                               floor=("the shipped model", shipped))
    assert d2["alias"] == "champion" and d2["comparisons"]["floor"]["low"] > 0
    assert d2["comparisons"]["floor"]["n"] == 40
    # A lucky +0.06 dB on average, +-0.5 per pair, is no evidence: the champion stays.
    jitter = [v - 25.0 for v in _scores(0.0, 0.5, seed=2).values()]
    noise = {k: v + 0.06 + j for (k, v), j in zip(better.items(), jitter)}
    d3 = promote_with_evidence(client, "m", v3, noise, lambda uri: better,
                               floor=("the shipped model", shipped))
    assert d3["alias"] == "challenger" and "not better with evidence than champion v2" in d3["reason"]
    assert d3["comparisons"]["champion"]["low"] < 0 < d3["comparisons"]["champion"]["high"]
    assert client.get_model_version_by_alias("m", "champion").version == v2
