"""The Makefile: `make help` lists every target; serving installs the runtime set, tests the dev extras."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAKEFILE = ROOT / "Makefile"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def phony_targets() -> list[str]:
    text = MAKEFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    targets = [t for line in re.findall(r"^\.PHONY:(.*)$", text, re.MULTILINE) for t in line.split()]
    assert targets, "no .PHONY line in the Makefile"
    return targets


def test_make_help_lists_every_phony_target() -> None:
    done = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = {m.group(1) for m in re.finditer(r"^make (\S+)\s", done.stdout, re.MULTILINE)}
    missing = [t for t in phony_targets() if t not in listed]
    assert not missing, f"make help does not list {missing}"


def fake_venv(tmp: Path) -> Path:
    """A copy of the Makefile and pyproject.toml whose .venv tools only log their arguments."""
    shutil.copy(MAKEFILE, tmp / "Makefile")
    shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    bin_dir = tmp / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    log = tmp / "calls.log"
    for tool in ("python", "kronos-serve", "mypy"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n')
        script.chmod(0o755)
    return log


def make(tmp: Path, log: Path, target: str) -> list[str]:
    """Run ``make target`` and return the tool calls it made."""
    log.write_text("")
    env = {**os.environ, "MAKEFLAGS": ""}
    done = subprocess.run(
        ["make", "-s", target], cwd=tmp, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return log.read_text().splitlines()


def test_run_installs_the_runtime_set_and_test_targets_the_dev_extras(tmp_path: Path) -> None:
    log = fake_venv(tmp_path)
    first = make(tmp_path, log, "run")
    assert first == [
        "python -m pip install torch==2.13.0",
        "python -m pip install -e .",
        "kronos-serve serve",
    ]
    assert make(tmp_path, log, "run") == ["kronos-serve serve"]  # idempotent
    # a dev target after run installs the dev extras (torch pinned first again)
    assert make(tmp_path, log, "typecheck") == [
        "python -m pip install torch==2.13.0",
        "python -m pip install -e .[dev]",
        "mypy ",
    ]
    assert make(tmp_path, log, "typecheck") == ["mypy "]
    # the dev extras include the runtime set: run after them installs nothing
    assert make(tmp_path, log, "run") == ["kronos-serve serve"]
    # a changed pyproject.toml reinstalls on the next use
    time.sleep(1.1)
    (tmp_path / "pyproject.toml").touch()
    assert make(tmp_path, log, "run")[:2] == [
        "python -m pip install torch==2.13.0",
        "python -m pip install -e .",
    ]


def test_train_default_overwrites_the_embedded_model_explicitly(tmp_path: Path) -> None:
    log = fake_venv(tmp_path)
    calls = make(tmp_path, log, "train-default")
    assert calls[-1] == "kronos-serve train --out server/kronos_server/default_model --force"
