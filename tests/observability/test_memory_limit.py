"""kronos_memory_limit_bytes: cgroup v2, else v1; 0 when unlimited or unknown."""

from __future__ import annotations

from pathlib import Path

from kronos_server.observability.metrics import Metrics, memory_limit_bytes


def write(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    return path


def test_cgroup_v2_limit_and_unlimited(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    assert memory_limit_bytes(write(tmp_path / "v2", "536870912"), missing) == 536870912
    assert memory_limit_bytes(write(tmp_path / "v2max", "max"), missing) == 0


def test_cgroup_v1_when_v2_is_absent(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    assert memory_limit_bytes(missing, write(tmp_path / "v1", "1073741824")) == 1073741824
    assert memory_limit_bytes(missing, write(tmp_path / "v1big", "9223372036854771712")) == 0


def test_neither_file_means_zero(tmp_path: Path) -> None:
    assert memory_limit_bytes(tmp_path / "a", tmp_path / "b") == 0


def test_the_gauge_is_always_present() -> None:
    value = Metrics().registry.get_sample_value("kronos_memory_limit_bytes")
    assert value is not None and value >= 0
