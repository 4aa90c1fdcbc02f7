"""deploy/kubernetes and deploy/systemd: schemas, rendering, and cross-checks against the code.

Offline: every manifest is validated against the Kubernetes API schemas shipped in the
kubernetes-validate package (the ServiceMonitor CRD against tests/deploy/schemas/), the
kustomizations are rendered by kubectl when it is on PATH (skipped otherwise) and always by a small
renderer here, and every rendered target is checked against what the server really does: probe
service names, ports, settings and their validation, the drain arithmetic, the metrics path and the
exported metric names. No cluster is involved.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from grpc_health.v1 import health_pb2

from kronos_server.cli import EXIT_USAGE
from kronos_server.observability.metrics import Metrics
from kronos_server.rpc.health import Health
from kronos_server.security.keys import parse_keys
from kronos_server.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
BASE = K8S / "base"
VARIANTS = K8S / "variants"
SYSTEMD = ROOT / "deploy" / "systemd"
SCHEMAS = Path(__file__).parent / "schemas"
SCRAPE_CONFIG = ROOT / "monitoring" / "prometheus" / "prometheus-scrape-config.yml"
ALERTS = ROOT / "monitoring" / "prometheus" / "kronos-alerts.yml"
DEPLOYMENT_DOC = ROOT / "docs" / "DEPLOYMENT.md"
PERFORMANCE_DOC = ROOT / "docs" / "PERFORMANCE.md"

# the oldest Kubernetes the manifests claim (native gRPC probes are GA in 1.27) and the newest schemas
MIN_KUBERNETES = "1.27"
SCHEMA_VERSIONS = (MIN_KUBERNETES, kubernetes_validate.latest_version())
# files of a variant directory that are not part of its kustomization, on purpose (see its README)
STANDALONE = {"README.md", "prometheus-adapter-rules.yaml"}
TARGETS = {
    "base": BASE,
    **{p.name: p for p in sorted(VARIANTS.iterdir()) if (p / "kustomization.yaml").is_file()},
}
# docs/PERFORMANCE.md section 5: VmRSS after engine start and one warm-up forecast, Kronos-small dims
WARM_BASELINE_MIB = 452
MIB = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------
def yaml_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*") if p.suffix in (".yaml", ".yml"))


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def kustomization(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((directory / "kustomization.yaml").read_text())
    return data


def referenced_files(directory: Path) -> set[str]:
    """Every local file a kustomization names: resources, generator sources, patches."""
    k = kustomization(directory)
    names = {r for r in k.get("resources", []) if not (directory / r).is_dir()}
    for gen in k.get("configMapGenerator", []) + k.get("secretGenerator", []):
        names.update(gen.get("envs", []))
        names.update(f.split("=", 1)[-1] for f in gen.get("files", []))
    names.update(p["path"] for p in k.get("patches", []) if "path" in p)
    return names


def patch_files() -> set[Path]:
    return {(d / p["path"]).resolve() for d in TARGETS.values() for p in kustomization(d).get("patches", [])}


def is_core_manifest(doc: dict[str, Any]) -> bool:
    """A complete object of a built-in API group (kubernetes-validate has its schema)."""
    return "apiVersion" in doc and "kind" in doc and "monitoring.coreos.com" not in doc["apiVersion"]


def manifests() -> list[tuple[str, dict[str, Any]]]:
    """(label, object) for every complete manifest in deploy/kubernetes (patches excluded)."""
    out = []
    patches = patch_files()
    for path in yaml_files():
        if path.name == "kustomization.yaml" or path.resolve() in patches:
            continue
        for doc in load_docs(path):
            out.append((f"{path.relative_to(K8S)}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return out


def servicemonitor_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / "servicemonitor.schema.json").read_text())
    return schema


def validate_object(doc: dict[str, Any], version: str) -> None:
    if doc["kind"] == "ServiceMonitor":
        jsonschema.validate(doc, servicemonitor_schema(), cls=jsonschema.Draft202012Validator)
    else:
        kubernetes_validate.validate(doc, version, strict=True)


def env_file(path: Path) -> dict[str, str]:
    """A kustomize / systemd env file: KEY=VALUE lines, # comments and blank lines skipped."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
            out[key] = value
    return out


# ---------------------------------------------------------------------------------------------
# rendering: kubectl kustomize, and a small renderer for the features these kustomizations use
# ---------------------------------------------------------------------------------------------
def strategic_merge(live: Any, patch: Any) -> Any:
    """Enough of a strategic-merge patch for these overlays: maps merge, lists of named objects
    merge by name (containers, volumes; volumeMounts by mountPath), other lists are replaced."""
    if isinstance(live, dict) and isinstance(patch, dict):
        out = dict(live)
        for key, value in patch.items():
            out[key] = strategic_merge(live[key], value) if key in live else copy.deepcopy(value)
        return out
    if (
        isinstance(live, list)
        and isinstance(patch, list)
        and patch
        and all(isinstance(i, dict) for i in patch)
    ):
        key = next((k for k in ("name", "mountPath") if all(k in i for i in patch + live)), None)
        if key is not None:
            merged = {i[key]: i for i in live}
            order = [i[key] for i in patch if i[key] not in merged] + [i[key] for i in live]
            for item in patch:
                merged[item[key]] = strategic_merge(merged.get(item[key], {}), item)
            return [merged[k] for k in order]
    return copy.deepcopy(patch)


def python_render(directory: Path) -> list[dict[str, Any]]:
    k = kustomization(directory)
    objects: list[dict[str, Any]] = []
    for res in k.get("resources", []):
        path = directory / res
        objects += python_render(path) if path.is_dir() else load_docs(path)
    for gen in k.get("configMapGenerator", []):
        data: dict[str, str] = {}
        for env in gen.get("envs", []):
            data.update(env_file(directory / env))
        same = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == gen["name"]]
        if gen.get("behavior") == "merge":
            assert same, f"configMapGenerator {gen['name']}: merge with nothing"
            same[0]["data"].update(data)
        else:
            objects.append(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data}
            )
    for entry in k.get("patches", []):
        for patch in load_docs(directory / entry["path"]):
            hits = [
                i
                for i, o in enumerate(objects)
                if (o["kind"], o["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"])
            ]
            assert len(hits) == 1, f"patch {entry['path']} matches {len(hits)} objects"
            objects[hits[0]] = strategic_merge(objects[hits[0]], patch)
    for image in k.get("images", []):
        for obj in objects:
            for c in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                if c["image"].split(":")[0] == image["name"]:
                    c["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    for spec in k.get("labels", []):
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(spec["pairs"])
            if spec.get("includeTemplates") and "template" in obj.get("spec", {}):
                obj["spec"]["template"]["metadata"].setdefault("labels", {}).update(spec["pairs"])
    return objects


def kubectl_kustomize_version(kubectl: str) -> tuple[int, ...] | None:
    """kubectl's embedded kustomize version; None when kubectl does not report one (before 1.24)."""
    out = subprocess.run([kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True)
    try:
        text = json.loads(out.stdout).get("kustomizeVersion", "")
    except json.JSONDecodeError:
        return None
    match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(g) for g in match.groups()) if match else None


def kubectl_render(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH: the python renderer's results are checked instead")
    found = kubectl_kustomize_version(kubectl)
    if found is None or found < (5, 0, 0):
        which = ".".join(map(str, found)) if found else "of unknown version (kubectl < 1.24 does not say)"
        pytest.skip(
            f"kubectl embeds kustomize {which}; "
            "these kustomizations (labels, envs, patches) need kustomize >= 5.0, i.e. kubectl >= 1.27 "
            "(Debian's kubernetes-client 1.20 embeds 2.0.3)"
        )
    proc = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # deprecated fields (commonLabels, bases, patchesStrategicMerge) print warnings: none are used
    assert "warning" not in proc.stderr.lower(), proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d is not None]


RENDERERS: dict[str, Callable[[Path], list[dict[str, Any]]]] = {
    "python": python_render,
    "kubectl": kubectl_render,
}


@dataclass
class Rendered:
    target: str
    renderer: str
    objects: list[dict[str, Any]]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        hits = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        assert len(hits) == 1, f"{self.target}: {len(hits)} {kind} {name or ''}"
        return hits[0]

    def configmap(self, ref: str) -> dict[str, Any]:
        """A generated ConfigMap by its name in the sources (kubectl adds a content hash)."""
        hits = [
            o
            for o in self.all("ConfigMap")
            if re.fullmatch(rf"{ref}(-[a-z0-9]{{10}})?", o["metadata"]["name"])
        ]
        assert len(hits) == 1, f"{self.target}: ConfigMap {ref}: {len(hits)} found"
        return hits[0]

    @property
    def pod(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.one("Deployment")["spec"]["template"]["spec"]
        return spec

    @property
    def container(self) -> dict[str, Any]:
        containers = self.pod["containers"]
        assert len(containers) == 1
        c: dict[str, Any] = containers[0]
        return c

    def environment(self) -> dict[str, str]:
        """The container's KRONOS_* environment: envFrom ConfigMaps, then env (which wins)."""
        out: dict[str, str] = {}
        for source in self.container.get("envFrom", []):
            out.update(self.configmap(source["configMapRef"]["name"])["data"])
        for var in self.container.get("env", []):
            out[var["name"]] = var["value"]
        return out

    def settings(self) -> Settings:
        return settings_of(self.environment())


_cache: dict[tuple[str, str], list[dict[str, Any]]] = {}


@pytest.fixture(params=[(t, r) for t in TARGETS for r in RENDERERS], ids=lambda p: f"{p[0]}-{p[1]}")
def rendered(request: pytest.FixtureRequest) -> Rendered:
    target, renderer = request.param
    if (target, renderer) not in _cache:
        _cache[(target, renderer)] = RENDERERS[renderer](TARGETS[target])
    return Rendered(target, renderer, copy.deepcopy(_cache[(target, renderer)]))


@pytest.fixture(autouse=True)
def no_kronos_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings read the process environment too: only the manifests' values count here."""
    for name in list(os.environ):
        if name.startswith("KRONOS_"):
            monkeypatch.delenv(name)
    yield


def settings_of(env: dict[str, str]) -> Settings:
    """The settings a server started with ``env`` would have; fails on unknown or invalid keys."""
    fields = {}
    for key, value in env.items():
        if not key.startswith("KRONOS_"):
            continue
        field = key.removeprefix("KRONOS_").lower()
        # Settings ignore unknown variables (extra="ignore"): a typo would silently do nothing
        assert field in Settings.model_fields, f"{key} is not a Kronos setting"
        fields[field] = value
    try:
        return load_settings(**fields)
    except SettingsError as exc:
        pytest.fail(f"the server would refuse to start: {exc}")


def quantity(text: str | int) -> float:
    """A Kubernetes quantity (cpu or bytes) as a number."""
    units = {"m": 1e-3, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "k": 1e3, "M": 1e6, "G": 1e9}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    assert match, text
    return float(match.group(1)) * (units[match.group(2)] if match.group(2) else 1)


def seconds(duration: str) -> float:
    """A Prometheus duration (15s, 1m30s) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|[smhdwy])", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are checked here"
    wanted = selector.get("matchLabels", selector)
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


# ---------------------------------------------------------------------------------------------
# every file parses and validates
# ---------------------------------------------------------------------------------------------
def test_every_yaml_file_parses() -> None:
    files = yaml_files()
    assert len(files) >= 10
    for path in files:
        docs = load_docs(path)
        assert docs, f"{path}: empty"
        assert all(isinstance(d, dict) for d in docs), path


MANIFESTS = manifests()


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize(("label", "doc"), MANIFESTS, ids=[m[0] for m in MANIFESTS])
def test_manifest_validates_against_the_api_schema(label: str, doc: dict[str, Any], version: str) -> None:
    validate_object(doc, version)


def test_all_expected_kinds_are_validated() -> None:
    kinds = {doc["kind"] for _, doc in MANIFESTS}
    expected = {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceAccount",
        "ServiceMonitor",
        "Secret",
        "ConfigMap",
    }
    assert expected <= kinds


def _deployment() -> dict[str, Any]:
    return copy.deepcopy(load_docs(BASE / "deployment.yaml")[0])


def _typo(doc: dict[str, Any]) -> None:
    doc["spec"]["replica"] = 3


def _wrong_type(doc: dict[str, Any]) -> None:
    doc["spec"]["replicas"] = "three"


def _probe_field_typo(doc: dict[str, Any]) -> None:
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["serviceName"] = "x"


def _missing_required(doc: dict[str, Any]) -> None:
    del doc["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["grpc"]["port"]


@pytest.mark.parametrize("breakage", [_typo, _wrong_type, _probe_field_typo, _missing_required])
def test_a_broken_manifest_fails_validation(breakage: Callable[[dict[str, Any]], None]) -> None:
    doc = _deployment()
    validate_object(doc, SCHEMA_VERSIONS[-1])  # the intact one passes
    breakage(doc)
    with pytest.raises(jsonschema.ValidationError):
        kubernetes_validate.validate(doc, SCHEMA_VERSIONS[-1], strict=True)


def test_servicemonitor_schema_rejects_mistakes() -> None:
    schema = servicemonitor_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    good = load_docs(BASE / "servicemonitor.yaml")[0]
    jsonschema.validate(good, schema, cls=jsonschema.Draft202012Validator)
    for mutate in (
        lambda d: d["spec"]["endpoints"][0].update(intervall="15s"),
        lambda d: d["spec"]["endpoints"][0].update(interval="15 seconds"),
        lambda d: d["spec"]["endpoints"][0].update(path="v1/metrics"),
        lambda d: d["spec"]["endpoints"][0]["relabelings"][0].update(action="rename"),
        lambda d: d["spec"].pop("selector"),
        lambda d: d.update(apiVersion="monitoring.coreos.com/v1beta1"),
    ):
        bad = copy.deepcopy(good)
        mutate(bad)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema, cls=jsonschema.Draft202012Validator)


# ---------------------------------------------------------------------------------------------
# the kustomizations are complete
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", TARGETS)
def test_kustomization_lists_exactly_its_files(target: str) -> None:
    directory = TARGETS[target]
    listed = referenced_files(directory)
    for name in listed:
        assert (directory / name).is_file(), f"{target}: kustomization names missing {name}"
    present = {p.name for p in directory.iterdir() if p.is_file()} - {"kustomization.yaml"}
    unlisted = present - listed - STANDALONE
    assert not unlisted, f"{target}: files the kustomization does not use: {sorted(unlisted)}"
    for res in kustomization(directory).get("resources", []):
        if (directory / res).is_dir():
            assert (directory / res / "kustomization.yaml").is_file()


def test_the_variants_exist() -> None:
    assert {"base", "queue-depth-hpa", "official-checkpoints"} <= set(TARGETS)
    for name in ("queue-depth-hpa", "official-checkpoints"):
        assert "../../base" in kustomization(TARGETS[name])["resources"]


def test_rendered_objects_validate(rendered: Rendered) -> None:
    kinds = [o["kind"] for o in rendered.objects]
    assert sorted(kinds) == sorted(
        [
            "ServiceAccount",
            "ConfigMap",
            "Deployment",
            "Service",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "ServiceMonitor",
        ]
    ), kinds
    for obj in rendered.objects:
        for version in SCHEMA_VERSIONS:
            validate_object(obj, version)


def test_the_python_renderer_agrees_with_kubectl() -> None:
    """Where kubectl renders, the python renderer (used without it) gives the same objects,
    apart from the ConfigMap name's content hash."""
    for target, directory in TARGETS.items():
        mine = python_render(directory)
        theirs = kubectl_render(directory)

        def normal(objs: list[dict[str, Any]]) -> str:
            text = json.dumps(sorted(objs, key=lambda o: (o["kind"], o["metadata"]["name"])), sort_keys=True)
            return re.sub(r"kronos-settings-[a-z0-9]{10}", "kronos-settings", text)

        # kubectl's yaml turns 0440 into 288 as well; both sides are plain JSON data here
        assert json.loads(normal(mine)) == json.loads(normal(theirs)), target


# ---------------------------------------------------------------------------------------------
# cross-checks against the code
# ---------------------------------------------------------------------------------------------
def _health_status(service: str, ready: bool) -> int:
    """What the server's own health servicer answers for ``service`` (NOT_FOUND -> -1)."""

    class Aborted(Exception):
        pass

    class Context:
        async def abort(self, code: object, details: str = "") -> None:
            raise Aborted(code)

    async def check() -> int:
        health = Health()
        await health.live()
        await health.ready(ready)
        try:
            reply = await health.servicer.Check(health_pb2.HealthCheckRequest(service=service), Context())
        except Aborted:
            return -1
        return int(reply.status)

    return asyncio.run(check())


def test_probes_ask_the_servers_health_services(rendered: Rendered) -> None:
    c = rendered.container
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("readinessProbe", "startupProbe"):
        service = c[name]["grpc"]["service"]
        # SERVING only once the model is loaded (and not draining): readiness semantics
        assert _health_status(service, ready=False) == not_serving, name
        assert _health_status(service, ready=True) == serving, name
    liveness = c["livenessProbe"]["grpc"].get("service", "")
    assert _health_status(liveness, ready=False) == serving
    settings = rendered.settings()
    for name in ("readinessProbe", "startupProbe", "livenessProbe"):
        assert c[name]["grpc"]["port"] == settings.grpc_port
    start = c["startupProbe"]
    assert start["failureThreshold"] * start["periodSeconds"] >= 300  # a big checkpoint's load


def test_ports_match_the_settings(rendered: Rendered) -> None:
    settings = rendered.settings()
    defaults = Settings.model_fields
    ports = {p["name"]: p["containerPort"] for p in rendered.container["ports"]}
    assert ports == {"grpc": settings.grpc_port, "http": settings.http_port}
    assert ports == {"grpc": defaults["grpc_port"].default, "http": defaults["http_port"].default}
    grpc_svc = rendered.one("Service", "kronos-grpc")["spec"]
    assert grpc_svc["clusterIP"] == "None" and grpc_svc["publishNotReadyAddresses"] is False
    assert grpc_svc["ports"] == [
        {
            "name": "grpc",
            "port": settings.grpc_port,
            "targetPort": "grpc",
            "protocol": "TCP",
            "appProtocol": "grpc",
        }
    ]
    http_svc = rendered.one("Service", "kronos-http")["spec"]
    assert [(p["name"], p["port"], p["targetPort"]) for p in http_svc["ports"]] == [
        ("http", settings.http_port, "http")
    ]
    annotations = rendered.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(settings.http_port)


def test_every_setting_is_real_and_valid(rendered: Rendered) -> None:
    env = rendered.environment()
    assert all(k.startswith("KRONOS_") for k in env)
    settings = rendered.settings()  # unknown keys and invalid values fail here
    assert settings.host == "0.0.0.0"
    # the engine threads use the CPU the pod requests
    assert quantity(rendered.container["resources"]["requests"]["cpu"]) == settings.torch_threads


def test_settings_check_can_fail() -> None:
    with pytest.raises(AssertionError, match="not a Kronos setting"):
        settings_of({"KRONOS_GRPC_PORTS": "1"})
    with pytest.raises(pytest.fail.Exception, match="KRONOS_SHUTDOWN_GRACE"):
        settings_of({"KRONOS_SHUTDOWN_GRACE": "-1"})


def test_the_drain_fits_in_the_termination_grace(rendered: Rendered) -> None:
    settings = rendered.settings()
    pod = rendered.pod
    pre_stop = rendered.container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    sleep = float(pre_stop[1])
    # SIGTERM comes after the preStop hook; the server then reports not ready for drain_delay
    # while still serving, and drains for up to shutdown_grace
    assert settings.drain_delay > 0
    budget = sleep + settings.drain_delay + settings.shutdown_grace + 5
    assert pod["terminationGracePeriodSeconds"] >= budget
    # and no call admitted before SIGTERM can outlive the drain
    assert settings.shutdown_grace >= settings.inference_timeout
    strategy = rendered.one("Deployment")["spec"]["strategy"]
    assert strategy["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_selectors_match_the_pods(rendered: Rendered) -> None:
    deployment = rendered.one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selects(deployment["spec"]["selector"], pod_labels)
    for svc in rendered.all("Service"):
        assert selects({"matchLabels": svc["spec"]["selector"]}, pod_labels), svc["metadata"]["name"]
    assert selects(rendered.one("PodDisruptionBudget")["spec"]["selector"], pod_labels)
    for constraint in rendered.pod["topologySpreadConstraints"]:
        assert selects(constraint["labelSelector"], pod_labels)
    target = rendered.one("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert rendered.pod["serviceAccountName"] == rendered.one("ServiceAccount")["metadata"]["name"]
    # the ServiceMonitor picks the REST Service only, by labels, and its port by name
    monitor = rendered.one("ServiceMonitor")["spec"]
    picked = [s for s in rendered.all("Service") if selects(monitor["selector"], s["metadata"]["labels"])]
    assert [s["metadata"]["name"] for s in picked] == ["kronos-http"]
    assert monitor["endpoints"][0]["port"] in {p["name"] for p in picked[0]["spec"]["ports"]}


def test_security_context(rendered: Rendered) -> None:
    pod, c = rendered.pod, rendered.container
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert (psc["runAsUser"], psc["runAsGroup"], psc["fsGroup"]) == (1000, 1000, 1000)
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    csc = c["securityContext"]
    assert csc["readOnlyRootFilesystem"] is True
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["capabilities"] == {"drop": ["ALL"]}
    assert csc["runAsNonRoot"] is True and csc.get("privileged", False) is False
    assert pod["automountServiceAccountToken"] is False
    assert rendered.one("ServiceAccount")["automountServiceAccountToken"] is False
    # the only writable place is an emptyDir at /tmp, where the image keeps KRONOS_DEV_KEYS_DIR
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    for path, mount in mounts.items():
        if path != "/tmp":
            assert mount.get("readOnly") is True, path


def test_the_keys_file_comes_from_the_secret(rendered: Rendered) -> None:
    settings = rendered.settings()
    assert settings.api_keys_file is not None
    volumes = {v["name"]: v for v in rendered.pod["volumes"]}
    mount = next(
        m for m in rendered.container["volumeMounts"] if settings.api_keys_file.parent == Path(m["mountPath"])
    )
    secret = volumes[mount["name"]]["secret"]
    assert mount["readOnly"] is True and "subPath" not in mount  # so an updated Secret reaches the file
    assert secret["defaultMode"] == 0o440 and secret["optional"] is False
    # the Secret is not shipped in the kustomization (apply -k would overwrite the real keys)
    assert not rendered.all("Secret")
    example = load_docs(K8S / "examples" / "secret-api-keys.example.yaml")[0]
    assert example["metadata"]["name"] == secret["secretName"]
    keys_json = example["stringData"][settings.api_keys_file.name]
    store = parse_keys(json.loads(keys_json))
    assert len(store) == 0  # a valid file that admits nobody


def test_memory_fits_a_full_batch(rendered: Rendered) -> None:
    """The memory limit holds a full batch at Kronos-small dimensions: the warm process, plus the
    KV cache while it doubles to the capacity a full batch needs (old and new copy both held)."""
    import torch

    from kronos_server.engine.cache import KVCache
    from kronos_server.model.config import PredictorConfig

    settings = rendered.settings()
    small = PredictorConfig(s1_bits=10, s2_bits=10, n_layers=8, d_model=512, n_heads=8, ff_dim=1024)
    per_row = KVCache(SimpleNamespace(config=small), 512, torch.device("cpu")).bytes_per_row()  # type: ignore[arg-type]
    assert per_row == 18 * MIB  # the figure docs/PERFORMANCE.md and docs/DEPLOYMENT.md quote
    capacity = 1 << (settings.max_batch_rows - 1).bit_length()
    peak = WARM_BASELINE_MIB * MIB + (capacity + capacity // 2) * per_row
    resources = rendered.container["resources"]
    limit = quantity(resources["limits"]["memory"])
    assert limit >= 1.25 * peak, f"limit {limit / MIB:.0f} MiB vs peak {peak / MIB:.0f} MiB"
    assert quantity(resources["requests"]["memory"]) <= limit
    assert quantity(resources["requests"]["cpu"]) <= quantity(resources["limits"]["cpu"])


def test_metrics_scrape_matches_the_server_and_the_shipped_prometheus_config(rendered: Rendered) -> None:
    from kronos_bridge.routes.metrics import router

    paths = {getattr(r, "path", None) for r in router.routes}
    assert paths == {"/v1/metrics"}
    job = yaml.safe_load(SCRAPE_CONFIG.read_text())["scrape_configs"][0]
    endpoint = rendered.one("ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["path"] == job["metrics_path"] in paths
    assert endpoint["interval"] == job["scrape_interval"]
    assert endpoint["scrapeTimeout"] == job["scrape_timeout"]
    assert seconds(endpoint["scrapeTimeout"]) <= seconds(endpoint["interval"])
    # the job label the shipped alerts select
    relabel = [r for r in endpoint["relabelings"] if r.get("targetLabel") == "job"]
    assert [r["replacement"] for r in relabel] == [job["job_name"]]
    assert f'job="{job["job_name"]}"' in ALERTS.read_text()
    annotations = rendered.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == endpoint["path"]


def exported_metric_names() -> set[str]:
    return {family.name for family in Metrics().registry.collect()}


def test_hpa_scales_on_something_the_server_exports(rendered: Rendered) -> None:
    spec = rendered.one("HorizontalPodAutoscaler")["spec"]
    assert spec["minReplicas"] >= 2 and spec["maxReplicas"] > spec["minReplicas"]
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60
    exported = exported_metric_names()
    kinds = {m["type"] for m in spec["metrics"]}
    if rendered.target == "queue-depth-hpa":
        assert kinds == {"Pods"}, "the queue-depth variant replaces CPU"
    else:
        assert kinds == {"Resource"}
    settings = rendered.settings()
    for metric in spec["metrics"]:
        if metric["type"] == "Resource":
            assert metric["resource"]["name"] == "cpu"
            continue
        name = metric["pods"]["metric"]["name"]
        assert name in exported, f"{name} is not a metric of the server"
        target = quantity(metric["pods"]["target"]["averageValue"])
        # below the waiting room the admission limit leaves beside a full batch
        assert 0 < target < settings.max_queued_rows - settings.max_batch_rows


def test_adapter_rule_serves_the_hpa_metric() -> None:
    hpa = python_render(TARGETS["queue-depth-hpa"])
    wanted = {
        m["pods"]["metric"]["name"]
        for o in hpa
        if o["kind"] == "HorizontalPodAutoscaler"
        for m in o["spec"]["metrics"]
    }
    config_map = load_docs(VARIANTS / "queue-depth-hpa" / "prometheus-adapter-rules.yaml")[0]
    rules = yaml.safe_load(config_map["data"]["config.yaml"])["rules"]
    served = {r["name"]["as"] for r in rules}
    assert wanted <= served
    exported = exported_metric_names()
    for rule in rules:
        series = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", rule["seriesQuery"])
        assert series and series.group(1) in exported
        assert re.fullmatch(rule["name"]["matches"], series.group(1))
        assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}
        assert "<<.LabelMatchers>>" in rule["metricsQuery"] and "<<.GroupBy>>" in rule["metricsQuery"]


def test_image_is_the_package_version(rendered: Rendered) -> None:
    assert rendered.container["image"] == f"kronos-serve:{package_version('kronos-serve')}"
    assert rendered.container["args"] == ["serve"]


def test_official_checkpoints_variant_reads_the_mounted_models() -> None:
    for renderer in RENDERERS.values():
        try:
            objects = renderer(TARGETS["official-checkpoints"])
        except pytest.skip.Exception:
            continue
        r = Rendered("official-checkpoints", "", objects)
        settings = r.settings()
        volumes = {v["name"]: v for v in r.pod["volumes"]}
        mount = next(m for m in r.container["volumeMounts"] if m["mountPath"] == "/models")
        assert mount["readOnly"] is True
        claim = volumes[mount["name"]]["persistentVolumeClaim"]
        assert claim == {"claimName": "kronos-models", "readOnly": True}
        for path in (settings.model_path, settings.tokenizer_path):
            assert path is not None and path.parent == Path("/models")
    # and the base uses the embedded model
    base = Rendered("base", "", python_render(BASE)).settings()
    assert base.model_path is None and base.tokenizer_path is None


# ---------------------------------------------------------------------------------------------
# systemd
# ---------------------------------------------------------------------------------------------
def unit_entries(text: str) -> list[tuple[str, str, str]]:
    out, section = [], ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def test_systemd_unit() -> None:
    entries = unit_entries((SYSTEMD / "kronos-serve.service").read_text())
    service = {k: v for s, k, v in entries if s == "Service"}
    env = env_file(SYSTEMD / "kronos.env.example")
    settings = settings_of(env)
    assert service["ExecStart"] == "/opt/kronos/venv/bin/kronos-serve serve"
    assert service["User"] == "kronos" and service["EnvironmentFile"] == "/etc/kronos/kronos.env"
    assert service["KillSignal"] == "SIGTERM"
    assert float(service["TimeoutStopSec"]) >= settings.shutdown_grace + 5
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == str(EXIT_USAGE)  # a bad setting is not retried
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[key] == value, key
    assert service["ReadWritePaths"] == "/var/lib/kronos" == service["WorkingDirectory"]
    # the commented-out settings of the example are real ones too
    commented = re.findall(r"^#(KRONOS_[A-Z_]+)=", (SYSTEMD / "kronos.env.example").read_text(), re.M)
    assert commented and all(k.removeprefix("KRONOS_").lower() in Settings.model_fields for k in commented)


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed (Debian: systemd)")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    text = (SYSTEMD / "kronos-serve.service").read_text()
    # verify insists that ExecStart exists: point it at one that does
    runnable = re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", text, flags=re.M)

    def verify(unit_text: str) -> str:
        unit = tmp_path / "kronos-serve.service"
        unit.write_text(unit_text)
        proc = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True)
        return proc.stdout + proc.stderr + ("" if proc.returncode == 0 else f"exit {proc.returncode}")

    assert verify(runnable) == ""
    assert "Unknown key" in verify(runnable.replace("TimeoutStopSec=", "TimeoutStopSecs="))


# ---------------------------------------------------------------------------------------------
# docs
# ---------------------------------------------------------------------------------------------
def test_deployment_doc() -> None:
    text = DEPLOYMENT_DOC.read_text()
    assert "## Sizing per replica" in text
    sizing = text.split("## Sizing per replica", 1)[1].split("\n## ", 1)[0]
    # the replica figures are the recorded benchmark's
    recorded = json.loads((ROOT / "benchmarks/results/replicas-cpu.json").read_text())
    for ratio in recorded["ratios"].values():
        assert f"**{ratio:.2f}×**" in sizing, ratio
    for setup in recorded["summary"].values():
        assert f"| {setup['calls_per_s_median']:.1f} |" in sizing, setup
    performance = PERFORMANCE_DOC.read_text()
    for figure in ("341", "736", "18.0 MiB"):
        assert figure in sizing and figure in performance, figure
    for path in re.findall(r"kubectl apply -k (\S+)", text):
        assert (ROOT / path / "kustomization.yaml").is_file(), path
    # docker run --stop-timeout covers the default drain
    stop = re.search(r"--stop-timeout (\d+)", text)
    assert stop and int(stop.group(1)) > Settings.model_fields["shutdown_grace"].default
