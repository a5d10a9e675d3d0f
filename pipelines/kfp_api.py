"""Who we are to a Kubeflow Pipelines API, and whether that API can read our spec.

A multi-user Kubeflow (the usual install) rejects requests without a user identity and runs
pipelines in the user's profile namespace, so a submission carries both: a namespace and one of
- a bearer token (``--token`` or ``$KF_PIPELINES_TOKEN``, e.g. ``kubectl create token ...``);
- a service-account token read from a file (``--token-file`` or ``$KF_PIPELINES_SA_TOKEN_PATH``;
  inside a Kubeflow notebook the projected token at /var/run/secrets/kubeflow/pipelines/token);
- session cookies from the Kubeflow login (``--cookie 'authservice_session=...'`` or
  ``$KF_PIPELINES_COOKIE``).

Before anything is sent, the API's healthz endpoint says which KFP backend answers. kfp-kubernetes
2.17 writes fields (``optional``, ``secretNameParameter``, ``pvcNameParameter``) that backends
up to 2.4 reject as unknown (Kubeflow 1.9.x ships KFP 2.2/2.3), so every step with a secret
would fail before it starts: such a backend is refused here in one line naming the version
needed (MIN_BACKEND), rather than rewriting the spec into an older form.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from gir.errors import GirError

log = logging.getLogger("gir")

MIN_BACKEND = (2, 5, 0)
# What KFP <= 2.4 cannot parse ("unknown field" in the driver): secrets' and the checkpoint
# claim's name as a parameter, and secrets' `optional`.
NEW_SPEC_FIELDS = ("secretNameParameter", "pvcNameParameter", "optional")
TOKEN_ENV, TOKEN_PATH_ENV, COOKIE_ENV = ("KF_PIPELINES_TOKEN", "KF_PIPELINES_SA_TOKEN_PATH",
                                         "KF_PIPELINES_COOKIE")
NOTEBOOK_TOKEN = Path("/var/run/secrets/kubeflow/pipelines/token")
POD_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True)
class Connection:
    """Where a KFP API is and who we are to it (token or cookies; namespace for multi-user)."""

    host: str
    namespace: str | None = None
    token: str | None = None
    cookies: str | None = None

    @classmethod
    def of(cls, target: "Connection | str") -> "Connection":
        return target if isinstance(target, Connection) else cls(target)

    def headers(self) -> dict[str, str]:
        out = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if self.cookies:
            out["Cookie"] = self.cookies
        return out


def connection(host: str, namespace: str | None = None, token: str | None = None,
               token_file: str | None = None, cookies: str | None = None) -> Connection:
    """The flags (then the KF_PIPELINES_* variables) as a Connection; one kind of credential."""
    token = token or os.environ.get(TOKEN_ENV) or None
    cookies = cookies or os.environ.get(COOKIE_ENV) or None
    token_file = token_file or os.environ.get(TOKEN_PATH_ENV) or None
    if token_file is None and not (token or cookies) and NOTEBOOK_TOKEN.is_file():
        token_file = str(NOTEBOOK_TOKEN)
    if sum(x is not None for x in (token, token_file, cookies)) > 1:
        raise GirError("give one credential: --token, --token-file or --cookie")
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise GirError(f"--token-file {token_file}: {exc.strerror or exc}") from None
        if not token:
            raise GirError(f"--token-file {token_file}: the file is empty")
    return Connection(host.rstrip("/"), namespace or None, token, cookies)


def parse_version(tag: str) -> tuple[int, int, int] | None:
    """'2.3.0', 'v2.5.0-rc.1' -> (2, 3, 0); None when the tag names no version (a dev build)."""
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", tag or "")
    return (int(m[1]), int(m[2]), int(m[3] or 0)) if m else None


def probe(conn: Connection, timeout: float = 15) -> dict:
    """GET the API's healthz (v2beta1, then v1beta1 for the version) with our credentials.

    Fails fast, in one line, on a wrong host, a refused identity or an answer that is not KFP's
    (kfp.Client itself retries for ~25 s, logging tracebacks)."""
    health = _get_json(conn, "/apis/v2beta1/healthz", timeout)
    if not health.get("tag_name"):
        try:
            health = {**_get_json(conn, "/apis/v1beta1/healthz", timeout), **health}
        except GirError:
            pass
    return health


def check_backend(conn: Connection, health: dict, spec_text: str) -> None:
    """Refuse, in one line, a backend that cannot read spec_text or a multi-user one without a
    namespace."""
    version = parse_version(str(health.get("tag_name", "")))
    needs = [f for f in NEW_SPEC_FIELDS if re.search(rf"\b{f}:", spec_text)]
    want = ".".join(map(str, MIN_BACKEND))
    if version is None:
        log.warning("gir pipeline: %s did not report its KFP version; this spec needs KFP >= %s",
                    conn.host, want)
    elif version < MIN_BACKEND and needs:
        raise GirError(
            f"{conn.host} runs KFP {'.'.join(map(str, version))}, which rejects the fields "
            f"{', '.join(needs)} that kfp-kubernetes writes: KFP >= {want} is needed; upgrade "
            "Kubeflow Pipelines or submit to another backend")
    if health.get("multi_user") and not conn.namespace and not POD_NAMESPACE.is_file():
        raise GirError(f"{conn.host} is a multi-user Kubeflow: give --namespace <your profile "
                       "namespace> and a credential (--token, --token-file or --cookie)")


def client(conn: Connection):
    """A kfp.Client for conn: the token as a bearer header, the cookies, the namespace."""
    import kfp

    return kfp.Client(host=conn.host, existing_token=conn.token, cookies=conn.cookies,
                      namespace=conn.namespace or "kubeflow")


def _get_json(conn: Connection, path: str, timeout: float) -> dict:
    import urllib.error
    import urllib.request

    url = f"{conn.host}{path}"
    req = urllib.request.Request(url, headers=conn.headers())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        hint = {401: "no or expired credential", 403: "this identity may not use the API"}.get(
            exc.code, "is this the Kubeflow Pipelines API?")
        raise GirError(f"cannot submit to {conn.host}: {url} answered HTTP {exc.code} "
                       f"({hint})") from None
    except ValueError:
        raise GirError(f"cannot submit to {conn.host}: {url} did not answer JSON "
                       "(is this the Kubeflow Pipelines API? behind a login page, give "
                       "--token or --cookie)") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise GirError(f"cannot submit to {conn.host}: {reason}") from None
    if not isinstance(body, dict):
        raise GirError(f"cannot submit to {conn.host}: {url} did not answer a JSON object")
    return body
