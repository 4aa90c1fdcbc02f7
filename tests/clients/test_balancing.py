"""Several targets: round_robin over IP literals, per-call rotation over host names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kronos_client import ClientConfig, KronosClient
from kronos_client.channel import ROUND_ROBIN, plan_channels, split_host_port
from tests.clients.conftest import free_port, requests_total, settled
from tests.servers import start_server


@pytest.fixture(scope="module")
def pair(grpc_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    # the second server shares the first one's keys file, so one key opens both
    second = start_server(tmp_path_factory.mktemp("second"), api_keys_file=grpc_server.settings.api_keys_file)
    yield grpc_server, second
    second.stop()


def info_calls(running: Any) -> float:
    return requests_total(running, "GetModelInfo", "success")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_calls_reach_both_servers(pair: tuple[Any, Any], host: str) -> None:
    first, second = pair
    targets = [f"{host}:{first.server.port}", f"{host}:{second.server.port}"]
    before = (info_calls(first), info_calls(second))
    with KronosClient(targets, container=first.container, key=first.key) as client:
        for _ in range(12):
            assert client.model_info().max_context == 64
    total = settled(lambda: info_calls(first) + info_calls(second), sum(before) + 12)
    assert total == sum(before) + 12
    got = (info_calls(first) - before[0], info_calls(second) - before[1])
    assert sum(got) == 12
    assert got[0] > 0 and got[1] > 0, got


def test_a_dead_host_is_skipped(grpc_server: Any) -> None:
    targets = [f"localhost:{free_port()}", f"localhost:{grpc_server.server.port}"]
    config = ClientConfig(
        targets, container=grpc_server.container, key=grpc_server.key, backoff_base=0.01, timeout=20
    )
    with KronosClient(config) as client:
        for _ in range(4):
            assert client.model_info().max_context == 64


def test_plans() -> None:
    one = plan_channels(ClientConfig("h:1"))
    assert one.targets == ("h:1",) and ROUND_ROBIN in one.options
    assert plan_channels(ClientConfig("10.0.0.1:1, 10.0.0.2:2")).targets == ("ipv4:10.0.0.1:1,10.0.0.2:2",)
    assert plan_channels(ClientConfig(["[::1]:1", "[fe80::2]:2"])).targets == ("ipv6:[::1]:1,[fe80::2]:2",)
    assert plan_channels(ClientConfig(["a:1", "b:2"])).targets == ("a:1", "b:2")
    assert plan_channels(ClientConfig(["10.0.0.1:1", "[::1]:2"])).targets == ("10.0.0.1:1", "[::1]:2")
    assert plan_channels(ClientConfig("dns:///svc:50051")).targets == ("dns:///svc:50051",)
    named = plan_channels(ClientConfig("h:1", tls=True, server_name="kronos.internal"))
    assert ("grpc.ssl_target_name_override", "kronos.internal") in named.options


def test_split_host_port() -> None:
    assert split_host_port("h:1") == ("h", "1")
    assert split_host_port("[::1]:50051") == ("::1", "50051")
    assert split_host_port("dns:///h:1") is None
    assert split_host_port("nohost") is None


def test_config_validation(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="targets"):
        ClientConfig("")
    with pytest.raises(ValueError, match="timeout"):
        ClientConfig("h:1", timeout=0)
    with pytest.raises(ValueError, match="key or key_file"):
        ClientConfig("h:1", key="k", key_file=tmp_path / "k")
    with pytest.raises(ValueError, match="client_cert and client_key"):
        ClientConfig("h:1", client_cert="c.pem")
    assert ClientConfig("h:1", ca_cert="ca.pem").uses_tls
    assert ClientConfig("h:1", container="c", key="k").auth_metadata() == (
        ("x-container-name", "c"),
        ("authorization", "Bearer k"),
    )
