"""kronos_memory_limit_bytes: the tightest cgroup limit over this process's cgroup and its
parents (v2, else v1); 0 when unlimited or unknown."""

from __future__ import annotations

from pathlib import Path

from kronos_server.observability.cgroup import memory_limit_bytes, own_cgroups
from kronos_server.observability.metrics import Metrics


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    return path


def proc(tmp: Path, *lines: str) -> Path:
    return write(tmp / "proc-self-cgroup", "\n".join(lines))


def test_container_v2_limit_at_the_root_and_unlimited(tmp_path: Path) -> None:
    self_cgroup = proc(tmp_path, "0::/")
    write(tmp_path / "v2/memory.max", "536870912")
    assert memory_limit_bytes(tmp_path / "v2", self_cgroup) == 536870912
    write(tmp_path / "v2max/memory.max", "max")
    assert memory_limit_bytes(tmp_path / "v2max", self_cgroup) == 0


def test_systemd_service_limit_in_the_own_cgroup_below_an_unlimited_root(tmp_path: Path) -> None:
    """MemoryMax= of a unit: the limit is in the service's cgroup, the root says max."""
    root = tmp_path / "cg"
    write(root / "memory.max", "max")
    write(root / "system.slice/memory.max", "max")
    write(root / "system.slice/kronos-serve.service/memory.max", "3221225472")
    self_cgroup = proc(tmp_path, "0::/system.slice/kronos-serve.service")
    assert memory_limit_bytes(root, self_cgroup) == 3221225472


def test_the_tightest_limit_on_the_way_up_wins(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    write(root / "a/memory.max", "1000000")
    write(root / "a/b/memory.max", "5000000")
    assert memory_limit_bytes(root, proc(tmp_path, "0::/a/b")) == 1000000


def test_own_path_missing_in_this_view_falls_back_to_the_root(tmp_path: Path) -> None:
    """No cgroup namespace: /proc/self/cgroup names a host path the container cannot see."""
    root = tmp_path / "cg"
    write(root / "memory.max", "268435456")
    assert memory_limit_bytes(root, proc(tmp_path, "0::/docker/abc123")) == 268435456


def test_cgroup_v1_when_v2_is_absent(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    self_cgroup = proc(tmp_path, "5:memory:/job", "4:cpu,cpuacct:/job", "0::/")
    write(root / "memory/memory.limit_in_bytes", "9223372036854771712")  # v1's "no limit"
    write(root / "memory/job/memory.limit_in_bytes", "1073741824")
    assert memory_limit_bytes(root, self_cgroup) == 1073741824
    assert own_cgroups(self_cgroup) == ("/", "/job")


def test_v1_no_limit_value_and_nothing_readable_mean_zero(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    write(root / "memory/memory.limit_in_bytes", "9223372036854771712")
    assert memory_limit_bytes(root, proc(tmp_path, "3:memory:/")) == 0
    assert memory_limit_bytes(tmp_path / "nothing", tmp_path / "no-proc-file") == 0


def test_the_gauge_is_always_present() -> None:
    value = Metrics().registry.get_sample_value("kronos_memory_limit_bytes")
    assert value is not None and value >= 0
