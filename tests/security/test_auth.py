"""The authenticator: keys, trusted containers, mTLS names, and every way to be refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from kronos_server.errors import KronosError, PermissionDeniedError, UnauthenticatedError
from kronos_server.security.auth import Authenticator, Identity, bearer_token
from kronos_server.security.keys import KeyStore, add_key, load_keys
from kronos_server.security.ratelimit import RateSpec


@pytest.fixture
def keyed(tmp_path: Path) -> tuple[KeyStore, dict[str, str]]:
    """A keys file with a full-access container and a limited one; their plaintext keys."""
    path = tmp_path / "keys.json"
    keys = {
        "alpha": add_key(path, "alpha", rate_limit="600/minute"),
        "beta": add_key(path, "beta", methods=["GetModelInfo"]),
    }
    return load_keys(path), keys


def bearer(key: str) -> str:
    return f"Bearer {key}"


def refused(
    auth: Authenticator, container: str | None, authorization: str | None, method: str = "PredictSingle"
) -> KronosError:
    with pytest.raises(KronosError) as info:
        auth.authenticate(container, authorization, method)
    return info.value


def test_the_right_key_authenticates(keyed: tuple[KeyStore, dict[str, str]]) -> None:
    store, keys = keyed
    auth = Authenticator(store, frozenset())
    identity = auth.authenticate("alpha", bearer(keys["alpha"]), "PredictBatch")
    assert identity == Identity("alpha", "key", RateSpec(600, 60.0))
    # the scheme is case-insensitive and surrounding spaces do not matter
    assert auth.authenticate(" beta ", f"  bearer   {keys['beta']} ", "GetModelInfo").container == "beta"


@pytest.mark.parametrize(
    ("container", "authorization", "fragment"),
    [
        ("alpha", None, "missing credentials"),
        ("alpha", "", "missing credentials"),
        ("alpha", "   ", "missing credentials"),
        (None, None, "missing credentials"),
        ("alpha", "{key}", "malformed authorization"),  # no scheme
        ("alpha", "Basic {key}", "malformed authorization"),
        ("alpha", "Bearer", "malformed authorization"),
        ("alpha", "Bearer {key} extra", "malformed authorization"),
        ("alpha", "Bearer " + "x" * 600, "malformed authorization"),
        ("alpha", "Bearer {key}x", "invalid container name or API key"),  # wrong key
        ("alpha", "Bearer ks_guess", "invalid container name or API key"),
        ("gamma", "Bearer {key}", "invalid container name or API key"),  # unknown container
        (None, "Bearer {key}", "invalid container name or API key"),
        ("", "Bearer {key}", "invalid container name or API key"),
        ("bad name!", "Bearer {key}", "invalid container name or API key"),
        ("beta", "Bearer {key}", "invalid container name or API key"),  # another container's key
    ],
)
def test_rejections_are_unauthenticated_and_never_echo_the_key(
    keyed: tuple[KeyStore, dict[str, str]], container: str | None, authorization: str | None, fragment: str
) -> None:
    store, keys = keyed
    auth = Authenticator(store, frozenset())
    given = authorization.format(key=keys["alpha"]) if authorization is not None else None
    error = refused(auth, container, given)
    assert isinstance(error, UnauthenticatedError)
    assert error.code == "UNAUTHENTICATED"
    assert fragment in error.message
    for key in keys.values():
        assert key not in str(error) and key not in repr(error.details)
    assert "ks_guess" not in str(error) and "xxxx" not in str(error)


def test_unknown_and_known_containers_get_the_same_answer(keyed: tuple[KeyStore, dict[str, str]]) -> None:
    store, _ = keyed
    auth = Authenticator(store, frozenset())
    wrong = refused(auth, "alpha", bearer("ks_wrong"))
    unknown = refused(auth, "nobody", bearer("ks_wrong"))
    assert (type(wrong), wrong.message) == (type(unknown), unknown.message)


def test_method_not_allowed_is_permission_denied(keyed: tuple[KeyStore, dict[str, str]]) -> None:
    store, keys = keyed
    auth = Authenticator(store, frozenset())
    error = refused(auth, "beta", bearer(keys["beta"]), "PredictSingle")
    assert isinstance(error, PermissionDeniedError)
    assert error.code == "PERMISSION_DENIED"
    assert "PredictSingle" in error.message and keys["beta"] not in error.message
    # a wrong key is still UNAUTHENTICATED, whatever the method
    assert isinstance(refused(auth, "beta", bearer("ks_nope"), "PredictSingle"), UnauthenticatedError)


def test_trusted_containers_need_no_key() -> None:
    auth = Authenticator(None, frozenset({"legacy-app", "worker"}))
    assert auth.authenticate("legacy-app", None, "PredictStream") == Identity("legacy-app", "trusted", None)
    assert auth.authenticate("worker", "Bearer whatever", "PredictBatch").mode == "trusted"
    assert isinstance(refused(auth, "stranger", None), UnauthenticatedError)
    assert isinstance(refused(auth, None, None), UnauthenticatedError)
    assert isinstance(refused(auth, "stranger", "Bearer ks_x"), UnauthenticatedError)


def test_a_keyed_container_must_present_its_key_even_if_trusted(
    keyed: tuple[KeyStore, dict[str, str]],
) -> None:
    store, keys = keyed
    auth = Authenticator(store, frozenset({"alpha", "legacy-app"}))
    assert isinstance(refused(auth, "alpha", None), UnauthenticatedError)
    assert auth.authenticate("alpha", bearer(keys["alpha"]), "PredictSingle").mode == "key"
    # a trusted container absent from the keys file is still accepted by name
    assert auth.authenticate("legacy-app", None, "PredictSingle").mode == "trusted"


def test_nothing_configured_refuses_everyone() -> None:
    auth = Authenticator(None, frozenset())
    assert isinstance(refused(auth, "dev", "Bearer ks_x"), UnauthenticatedError)


def test_mtls_uses_the_certificate_name(keyed: tuple[KeyStore, dict[str, str]]) -> None:
    store, _ = keyed
    auth = Authenticator(store, frozenset({"legacy-app"}))
    assert auth.authenticate_mtls("alpha", "PredictSingle") == Identity("alpha", "mtls", RateSpec(600, 60.0))
    assert auth.authenticate_mtls("legacy-app", "PredictBatch") == Identity("legacy-app", "mtls", None)
    assert auth.authenticate_mtls("beta", "GetModelInfo").mode == "mtls"
    with pytest.raises(PermissionDeniedError, match="may not call PredictSingle"):
        auth.authenticate_mtls("beta", "PredictSingle")
    with pytest.raises(PermissionDeniedError, match="no known container"):
        auth.authenticate_mtls("stranger", "PredictSingle")
    with pytest.raises(PermissionDeniedError):
        auth.authenticate_mtls("", "PredictSingle")


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("BEARER\tabc") == "abc"
    assert bearer_token(None) is None
    assert bearer_token("Bearer") is None
    assert bearer_token("Token abc") is None
    assert bearer_token("Bearer a b") is None
