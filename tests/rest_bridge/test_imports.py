"""The REST app and the standalone bridge load no torch: they import no engine and no model."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["kronos_bridge.app", "kronos_bridge.server", "kronos_bridge.remote"])
def test_importing_loads_no_torch(module: str) -> None:
    loaded = "[m for m in sys.modules if m.startswith('torch')]"
    code = f"import {module}, sys; assert 'torch' not in sys.modules, {loaded}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_check_can_fail() -> None:
    """The same check, for a module that does load torch, fails."""
    code = "import kronos_server.engine.engine, sys; assert 'torch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "AssertionError" in done.stderr
