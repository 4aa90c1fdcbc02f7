"""The memory limit of the cgroup this process runs in (cgroup v2, else v1).

Inside a container the process's cgroup is the root of its own view, so the limit is in
``/sys/fs/cgroup/memory.max``. Under systemd (``MemoryMax=``) or any other cgroup below the
root, it sits in the process's own cgroup directory or a parent of it, named by
``/proc/self/cgroup``. The effective limit is the smallest one on the way up.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
# cgroup v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX pages); treat >= 2**60 as unlimited
_UNLIMITED = 2**60


def own_cgroups(proc_cgroup: Path = PROC_SELF_CGROUP) -> tuple[str, str]:
    """(v2 path, v1 memory-controller path) of this process; "/" where not listed."""
    v2 = v1 = "/"
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return v2, v1
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            v2 = path or "/"
        elif "memory" in controllers.split(","):
            v1 = path or "/"
    return v2, v1


def _up(top: Path, relative: str) -> Iterator[Path]:
    """``top/relative`` and each parent directory up to ``top`` itself."""
    here = top / relative.strip("/")
    while True:
        yield here
        if here == top or top not in here.parents:
            return
        here = here.parent


def _limit(path: Path) -> int | None:
    """The limit in one file: bytes, 0 for none; None when the file is absent or unreadable."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return 0
    try:
        value = int(text)
    except ValueError:
        return 0
    return 0 if value >= _UNLIMITED else value


def memory_limit_bytes(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> int:
    """The tightest memory limit over this process's cgroup and its parents, in bytes:
    v2 ``memory.max`` when any is readable, else v1 ``memory/.../memory.limit_in_bytes``;
    0 when there is no limit or nothing is readable."""
    v2, v1 = own_cgroups(proc_cgroup)
    for top, relative, name in ((root, v2, "memory.max"), (root / "memory", v1, "memory.limit_in_bytes")):
        found = [value for d in _up(top, relative) if (value := _limit(d / name)) is not None]
        if found:
            limits = [value for value in found if value > 0]
            return min(limits) if limits else 0
    return 0
