"""The import rules of docs/ARCHITECTURE.md, checked on every module's source.

Every import counts, those inside functions too (a lazy import is still a dependency). A rule
names a package (or module) and the top-level names it must never import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "kronos_server": ROOT / "server" / "kronos_server",
    "kronos_bridge": ROOT / "rest_bridge" / "kronos_bridge",
    "kronos_client": ROOT / "clients" / "kronos_client",
}
TRANSPORTS = (
    "grpc",
    "grpc_status",
    "grpc_health",
    "grpc_reflection",
    "kronos.v1",
    "fastapi",
    "starlette",
    "uvicorn",
)
SERVER_ONLY = ("kronos_server", "kronos_bridge", "torch", "safetensors")

# (package or module, what it must not import, why)
RULES = [
    (
        "kronos_server.engine",
        (*TRANSPORTS, "kronos_server.rpc", "kronos_server.gate", "kronos_bridge"),
        "the engine knows no transport",
    ),
    (
        "kronos_server.model",
        (*TRANSPORTS, "kronos_server.rpc", "kronos_server.gate", "kronos_server.engine", "kronos_bridge"),
        "the model is plain torch",
    ),
    (
        "kronos_server.forecast",
        (*TRANSPORTS, "torch", "kronos_server.rpc", "kronos_server.gate", "kronos_bridge"),
        "request types and codecs are transport-free",
    ),
    (
        "kronos_server.gate",
        (*TRANSPORTS, "torch", "kronos_server.rpc", "kronos_server.engine", "kronos_bridge"),
        "the call gate is written once, for every transport",
    ),
    (
        "kronos_server.backtest",
        (*TRANSPORTS, "torch", "kronos_server.rpc", "kronos_server.gate", "kronos_bridge"),
        "a backtest is planned, run through the dataplane's submit function, and scored transport-free",
    ),
    (
        "kronos_server.security",
        (*TRANSPORTS, "torch", "kronos_server.rpc", "kronos_bridge"),
        "identity and limits are transport-free",
    ),
    (
        "kronos_server.dataplane",
        (*TRANSPORTS, "kronos_server.rpc", "kronos_bridge"),
        "the dataplane is the transport-neutral API",
    ),
    ("kronos_server.rpc", ("fastapi", "starlette", "uvicorn", "kronos_bridge"), "gRPC is one transport"),
    ("kronos_server.training", (*TRANSPORTS, "kronos_server.rpc", "kronos_bridge"), "training runs offline"),
    ("kronos_client", SERVER_ONLY, "the client installs without the server or torch"),
]


def module_name(package: str, path: Path) -> str:
    parts = path.relative_to(PACKAGES[package]).with_suffix("").parts
    return ".".join((package, *(p for p in parts if p != "__init__")))


def imports(path: Path, module: str) -> set[str]:
    """The absolute names every import statement of ``path`` reaches."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: against the module's package (a package is its own)
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                prefix = ".".join(package[: len(package) - (node.level - 1)])
                base = f"{prefix}.{node.module}" if node.module else prefix
            found.add(base)
            # `from kronos_server import rpc` reaches kronos_server.rpc
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def sources() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            name = module_name(package, path)
            out[name] = imports(path, name)
    return out


SOURCES = sources()


def reaches(name: str, banned: str) -> bool:
    return name == banned or name.startswith(banned + ".")


@pytest.mark.parametrize(("scope", "banned", "why"), RULES, ids=[r[0] for r in RULES])
def test_import_rule(scope: str, banned: tuple[str, ...], why: str) -> None:
    scoped = {m: names for m, names in SOURCES.items() if reaches(m, scope)}
    assert scoped, f"no module under {scope}: the rule is stale"
    broken = sorted(
        f"{module} imports {name}"
        for module, names in scoped.items()
        for name in names
        for ban in banned
        if reaches(name, ban)
    )
    assert not broken, f"{why}:\n" + "\n".join(broken)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    import torch\n    from . import sibling\n", encoding="utf-8")
    found = imports(source, "kronos_server.forecast.mod")
    assert {"torch", "kronos_server.forecast.sibling"} <= found
