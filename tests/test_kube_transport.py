"""kube/: the kubeconfig errors, the transport and the error mapping, against the EMULATED API
server (tests/emulator) over real HTTP on loopback. Test names say `emulated` where it answers."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuscia_components.kube import errors
from kuscia_components.kube.errors import (
    AnswerTooLarge,
    ApiServerUnreachable,
    ContextNotFound,
    ContextNotSet,
    CredentialsNotLoaded,
    KubeconfigError,
    KubeconfigNotFound,
    api_error,
)
from kuscia_components.kube.kubeconfig import KubeconfigRef, load, without_userinfo
from kuscia_components.kube.transport import ApiServerTransport, Response
from tests.emulator import KusciaEmulator
from tests.mariadb import free_port

SECRET = "s3cret-bearer-token-never-shown"


def write_config(path: Path, config: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return str(path)


def emulator_config(emu: KusciaEmulator) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(Path(emu.kubeconfig_path).read_text(encoding="utf-8"))
    return config


def kubeconfig_error(ref: KubeconfigRef) -> KubeconfigError:
    with pytest.raises(KubeconfigError) as raised:
        load(ref)
    return raised.value


# -- kubeconfig errors: typed, naming the setting and the fix, never a credential -------------------


def test_missing_file_names_the_path_and_the_setting(tmp_path: Path) -> None:
    error = kubeconfig_error(KubeconfigRef(str(tmp_path / "absent")))
    assert isinstance(error, KubeconfigNotFound) and error.setting == "kuscia:kubeconfig"
    assert error.detail == f"no usable kubeconfig at {tmp_path / 'absent'}: no such file"
    assert "kuscia:kubeconfig" in error.fix and error.fix in str(error)


def test_invalid_yaml_is_located_without_quoting_the_line(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(f"users:\n- name: u\n  user: {{token: {SECRET}\n", encoding="utf-8")
    error = kubeconfig_error(KubeconfigRef(str(path)))
    assert isinstance(error, KubeconfigNotFound) and "line " in error.detail
    assert SECRET not in str(error) and SECRET not in repr(error)


def test_a_file_that_is_not_a_kubeconfig_is_reported_not_crashed(tmp_path: Path) -> None:
    for text, reason in (("", "is empty"), ("- a\n- list\n", "it is not a kubeconfig"), ("words\n", "not a")):
        path = tmp_path / "kubeconfig"
        path.write_text(text, encoding="utf-8")
        error = kubeconfig_error(KubeconfigRef(str(path)))
        assert isinstance(error, KubeconfigNotFound) and error.detail.startswith("no usable kubeconfig")
        assert reason in error.detail


def test_no_current_context_asks_for_kube_context(tmp_path: Path) -> None:
    config = {
        "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": SECRET}}],
        "contexts": [{"name": "kind-a", "context": {"cluster": "c", "user": "u"}}],
    }
    error = kubeconfig_error(KubeconfigRef(write_config(tmp_path / "k", config)))
    assert isinstance(error, ContextNotSet) and error.setting == "kuscia:kubeContext"
    assert "kuscia:kubeContext <one of: kind-a>" in error.fix and SECRET not in str(error)


def test_unknown_context_lists_the_ones_there(tmp_path: Path) -> None:
    config = {
        "current-context": "kind-a",
        "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": SECRET}}],
        "contexts": [{"name": "kind-a", "context": {"cluster": "c", "user": "u"}}],
    }
    error = kubeconfig_error(KubeconfigRef(write_config(tmp_path / "k", config), "kind-b"))
    assert isinstance(error, ContextNotFound) and error.setting == "kuscia:kubeContext"
    assert error.detail.startswith("context 'kind-b' is not in") and "(it has: kind-a)" in error.detail


def test_credentials_that_do_not_load_name_the_context_not_the_secret(tmp_path: Path) -> None:
    config = {
        "current-context": "broken",
        "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:6443"}}],
        "users": [
            {
                "name": "u",
                "user": {"client-certificate": str(tmp_path / "gone.crt"), "client-key-data": SECRET},
            }
        ],
        "contexts": [{"name": "broken", "context": {"cluster": "c", "user": "u"}}],
    }
    error = kubeconfig_error(KubeconfigRef(write_config(tmp_path / "k", config)))
    assert isinstance(error, CredentialsNotLoaded) and "context 'broken' does not load" in error.detail
    assert "gone.crt" in error.detail and "kubectl --context broken version" in error.fix
    assert SECRET not in str(error)


def test_kubeconfig_lists_and_env_are_read_at_call_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "not-yet"))
    ref = KubeconfigRef()  # no setting: $KUBECONFIG, read when loading
    assert isinstance(kubeconfig_error(ref), KubeconfigNotFound)
    config = {
        "current-context": "a",
        "clusters": [{"name": "c", "cluster": {"server": "https://user:pw@10.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": SECRET}}],
        "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u"}}],
    }
    first = write_config(tmp_path / "first", config)
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "missing"), first]))
    connection = load(ref)
    assert (connection.context, connection.server) == ("a", "https://10.0.0.1:6443")  # userinfo dropped
    assert SECRET not in repr(connection)
    assert without_userinfo("http://127.0.0.1:1") == "http://127.0.0.1:1"


# -- the transport against the emulated API server --------------------------------------------------


def test_emulated_requests_are_authenticated_and_paths_sent_unencoded(emu: KusciaEmulator) -> None:
    node = emu.add_node("bob", protocol="NOTLS")
    path = f"/api/v1/namespaces/{node.namespace}/services/http:{node.service}:8082/proxy/healthZ"
    with ApiServerTransport(KubeconfigRef(emu.kubeconfig_path, emu.context)) as transport:
        version = transport.request("GET", "/version")
        answer = transport.request("POST", path, body=b"{}")
        assert emu.bearer_token not in repr(transport)
    assert version.status == 200 and isinstance(version.json(), dict)
    assert answer.status == 200 and answer.json()["data"] == {"ready": True}
    assert emu.requests[-1].path == path


def test_emulated_kubeconfig_is_read_on_first_request_not_when_built(
    emu: KusciaEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "later"
    transport = ApiServerTransport(KubeconfigRef(str(path)))
    write_config(path, emulator_config(emu))  # written after the transport was built
    try:
        assert transport.request("GET", "/version").status == 200
    finally:
        transport.close()


def test_emulated_transport_pickles_without_credentials(emu: KusciaEmulator) -> None:
    transport = ApiServerTransport(KubeconfigRef(emu.kubeconfig_path))
    transport.connect()
    data = pickle.dumps(transport)
    assert emu.bearer_token.encode() not in data
    again = pickle.loads(data)
    assert again.request("GET", "/version").status == 200
    again.close()
    transport.close()


def test_emulated_answers_are_bounded(emu: KusciaEmulator) -> None:
    with ApiServerTransport(KubeconfigRef(emu.kubeconfig_path)) as transport:
        with pytest.raises(AnswerTooLarge, match="longer than 10 bytes"):
            transport.request("GET", "/version", max_bytes=10)
        assert transport.request("GET", "/version").status == 200  # the pool still works


def test_emulated_unreachable_api_server_is_a_connection_error(tmp_path: Path) -> None:
    config = {
        "current-context": "dead",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
        "users": [{"name": "u", "user": {"token": SECRET}}],
        "contexts": [{"name": "dead", "context": {"cluster": "c", "user": "u"}}],
    }
    transport = ApiServerTransport(KubeconfigRef(write_config(tmp_path / "k", config)))
    with transport, pytest.raises(ApiServerUnreachable) as raised:
        transport.request("GET", "/version", timeout=2)
    assert isinstance(raised.value, OSError) and "does not answer" in str(raised.value)
    assert SECRET not in str(raised.value)


# -- the error mapping -------------------------------------------------------------------------


def test_emulated_api_server_refusals_map_to_typed_errors(emu: KusciaEmulator, tmp_path: Path) -> None:
    emu.add_node("alice", protocol="TLS")
    bob = emu.add_node("bob", protocol="NOTLS")
    with ApiServerTransport(KubeconfigRef(emu.kubeconfig_path)) as transport:
        missing = transport.request("GET", "/api/v1/namespaces/nowhere/secrets/none")
        no_kind = transport.request("GET", "/apis/example.com/v1/widgets")
        no_service = transport.request(
            "POST", "/api/v1/namespaces/autonomy-alice/services/https:absent:8082/proxy/healthZ", body=b"{}"
        )
        wrong_scheme = transport.request(
            "POST", f"/api/v1/namespaces/{bob.namespace}/services/https:{bob.service}:8082/proxy/healthZ"
        )
        gateway = transport.request(
            "GET", f"/api/v1/namespaces/{bob.namespace}/services/http:{bob.service}:1080/proxy/"
        )
        review = transport.request(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body=b'{"spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}}',
        )
    error = api_error(missing, "GET secret")
    assert isinstance(error, errors.NotFound) and error.status == 404 and error.reason == "NotFound"
    assert str(error).startswith("GET secret: HTTP 404 (NotFound ") and '"none" not found' in error.message
    assert isinstance(api_error(no_kind, "list"), errors.NotFound)
    assert isinstance(api_error(no_service, "proxy", proxied=True), errors.NotFound)
    assert isinstance(api_error(wrong_scheme, "proxy", proxied=True), errors.Unavailable)
    assert gateway.status == 401 and api_error(gateway, "gateway", proxied=True) is None  # Kuscia's own 401
    assert isinstance(api_error(gateway, "gateway"), errors.Unauthenticated)  # not proxied: any 401 maps
    assert review.status == 201 and api_error(review, "review") is None

    config = emulator_config(emu)
    config["users"][0]["user"] = {"token": SECRET}
    with ApiServerTransport(KubeconfigRef(write_config(tmp_path / "k", config))) as transport:
        refused = api_error(transport.request("GET", "/version"), "GET /version")
    assert isinstance(refused, errors.Unauthenticated) and refused.reason == "Unauthorized"
    assert SECRET not in str(refused)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, errors.Unauthenticated),
        (403, errors.Forbidden),
        (404, errors.NotFound),
        (409, errors.Conflict),
        (503, errors.Unavailable),
        (500, errors.ApiError),
        (422, errors.ApiError),
    ],
)
def test_each_status_has_its_type(status: int, kind: type[errors.ApiError]) -> None:
    body = f'{{"kind": "Status", "code": {status}, "reason": "R", "message": "m"}}'.encode()
    error = api_error(Response(status, body, {}), "GET /x")
    assert type(error) is kind and (error.status, error.reason, error.message) == (status, "R", "m")
    plain = api_error(Response(status, b"<html>oops</html>", {}), "GET /x")
    assert type(plain) is kind and plain.message == "<html>oops</html>"
    assert api_error(Response(status, b"<html>oops</html>", {}), "GET /x", proxied=True) is None
    assert api_error(Response(200, b"{}", {}), "GET /x") is None
