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
