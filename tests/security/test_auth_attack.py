"""1,000 hostile authentication attempts over gRPC and REST against one `kronos-serve serve`.

The keys file holds two containers: ``alpha`` (every method) and ``beta`` (GetModelInfo
only); no trusted containers. The attempts mix both transports and every method, with
missing, wrong, near-miss, malformed, duplicated, smuggled and spoofed credentials. Proven:

* not one forecast (nor model info) is served to an attempt: each is UNAUTHENTICATED /
  PERMISSION_DENIED (401 / 403), except the few that never reach the service: metadata over
  gRPC's 16 KiB limit (RESOURCE_EXHAUSTED, 413) and header bytes the HTTP parser refuses (400);
* valid calls interleaved with the attack, and after it, are served;
* ``kronos_security_events_total`` grows by exactly the attempts that reached authentication,
  with ``container`` only ``alpha``, ``beta`` or ``unknown``;
* no key (valid or invalid), no stored hash and no attacker-chosen name or header value
  appears in the server's log output or among the metric label values.
"""

from __future__ import annotations

import base64
import json
import random
import re
import secrets
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import grpc
import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_server.security.keys import add_key, generate_key, hash_key, load_keys
from tests.processes import ServerProcess, parity_env
from tests.rest_bridge.helpers import body, poll
from tests.rest_bridge.test_backtest import backtest_body
from tests.rpc.helpers import request
from tests.rpc.test_backtest import backtest_request

# the header the loopback REST bridge of earlier releases marked its calls with, so that the
# metrics skipped them: nothing honours it now, and a forged one must grant nothing
BRIDGE_METADATA = "x-kronos-bridge"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ATTEMPTS = 1000
VALID_EVERY = 50  # one legitimate call after every 50 attempts
WORKERS = 6
SEED = 20240618
# a marker in every attacker-chosen name and header value, so a leak is unmistakable
MARK = "zq" + secrets.token_hex(4)

Transport = Literal["grpc", "rest", "raw"]
Header = tuple[str, str | bytes]
REST_PATH = {
    "single": "/v1/predict/single",
    "batch": "/v1/predict/batch",
    "backtest": "/v1/backtest",
    "models": "/v1/models",
}
# the answers an attempt may get, by what it is expected to be refused as
REFUSED = {"UNAUTHENTICATED", "PERMISSION_DENIED", "401", "403"}
# every field a log line of the server may carry (docs/SECURITY.md, Logs)
LOG_FIELDS = {
    *("timestamp", "level", "logger", "message", "error_type", "exception"),
    *("request_id", "endpoint", "container", "status", "latency_ms", "code", "series_id", "rows", "pred_len"),
    *("method", "path", "http_status"),
    *("horizon", "origins"),  # of a backtest
}


@dataclass(frozen=True)
class Attempt:
    category: str
    transport: Transport
    headers: tuple[Header, ...]
    method: str = "single"  # single, batch, stream (gRPC only), models
    expect: str = "unauthenticated"  # unauthenticated, permission_denied, too_large, bad_http


@dataclass
class Keys:
    alpha: str
    beta: str
    path: Path


@dataclass
class Served:
    process: ServerProcess
    keys: Keys
    base: str
    stub: pb_grpc.KronosPredictorStub
    http: httpx.Client


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("attack")
    path = tmp / "keys.json"
    keys = Keys(add_key(path, "alpha"), add_key(path, "beta", methods=["GetModelInfo"]), path)
    env = {**parity_env(path), "KRONOS_LOG_LEVEL": "DEBUG", "KRONOS_DEV_KEYS_DIR": str(tmp / "dev")}
    process = ServerProcess("serve", env={**env, "KRONOS_TRUSTED_CONTAINERS": ""})
    try:
        process.wait_ready()
        base = f"http://127.0.0.1:{process.port('HTTP')}"
        poll(lambda: httpx.get(f"{base}/v1/readyz").status_code == 200, timeout=60)
        channel = grpc.insecure_channel(process.target)
        with httpx.Client(base_url=base, timeout=30) as http:
            stub = pb_grpc.KronosPredictorStub(channel)  # type: ignore[no-untyped-call]
            yield Served(process, keys, base, stub, http)
        channel.close()
    finally:
        process.stop()


# --- the catalogue of attacks -------------------------------------------------------------


def near_misses(key: str, rng: random.Random) -> list[str]:
    """The right key, slightly wrong: one character changed, truncated, extended, re-cased."""
    i = rng.randrange(3, len(key))
    changed = key[:i] + ("A" if key[i] != "A" else "B") + key[i + 1 :]
    out = [changed, key[:-1], key[: len(key) // 2], key + "x", key.lower(), key.upper(), key[::-1]]
    out.append(key[3:])  # without the ks_ prefix
    out.append(hash_key(key))  # the stored hash presented as the key
    assert key not in out
    return out


def catalogue(keys: Keys, rng: random.Random) -> dict[str, list[tuple[Transport, tuple[Header, ...]]]]:
    """Attack shapes by category: (transports they are sent over, headers)."""
    a, b = keys.alpha, keys.beta
    name = ("x-container-name", "alpha")

    def auth(value: str | bytes) -> Header:
        return ("authorization", value)

    both: tuple[Transport, ...] = ("grpc", "rest")
    shapes: dict[str, list[tuple[Transport, tuple[Header, ...]]]] = {}

    def add(category: str, headers: tuple[Header, ...], transports: tuple[Transport, ...] = both) -> None:
        shapes.setdefault(category, []).extend((t, headers) for t in transports)

    # missing credentials
    add("missing", ())
    add("missing", (name,))
    add("missing", (name, auth("")))
    add("missing", (auth(f"Bearer {a}"),))  # the right key, no container
    add("missing", (("x-container-name", ""), auth(f"Bearer {a}")))
    # wrong keys
    for _ in range(3):
        add("wrong-random", (name, auth(f"Bearer {generate_key()}")))
    add("wrong-random", (name, auth(f"Bearer {secrets.token_hex(32)}")))
    for wrong in near_misses(a, rng):
        add("wrong-near-miss", (name, auth(f"Bearer {wrong}")))
    add("wrong-whitespace", (name, auth(f"Bearer {a[:12]} {a[12:]}")))  # a space inside the key
    add("wrong-whitespace", (name, auth(f"Bearer {a} {a}")))
    add("wrong-whitespace", (name, auth(f"Bearer{a}")))  # no space after the scheme
    add("wrong-whitespace", (("x-container-name", "al pha"), auth(f"Bearer {a}")))
    add("wrong-case-name", (("x-container-name", "Alpha"), auth(f"Bearer {a}")))
    add("wrong-case-name", (("x-container-name", "ALPHA"), auth(f"Bearer {a}")))
    # another container's key, and a valid key that may not predict
    add("other-container", (name, auth(f"Bearer {b}")))
    add("other-container", (("x-container-name", "beta"), auth(f"Bearer {a}")))
    add("other-container", (("x-container-name", f"gamma-{MARK}"), auth(f"Bearer {a}")))
    # malformed authorization
    for value in (
        "Bearer",
        "bearer  x",
        f"Basic {base64.b64encode(f'alpha:{a}'.encode()).decode()}",
        f"Token {a}",
        a,  # no scheme
        f"Bearer {a} extra",
        f"Bearer Bearer {a}",
        f"Bearer {a},Bearer {a}",
        f"Digest username=alpha, response={MARK}",
        "Bearer " + "A" * 4000,  # very long, under gRPC's metadata limit
        f"Bearer ks_{MARK}" + "x" * 600,  # longer than any key
    ):
        add("malformed", (name, auth(value)))
    add("malformed", (name, auth("Bearer ")), ("grpc",))  # HTTP clients strip or refuse the trailing space
    # over gRPC's 16 KiB metadata limit: refused before any interceptor runs
    add("oversized", (name, auth("Bearer " + "B" * 20_000)))
    # REST only: bytes that are not ASCII (latin-1, UTF-8), forwarded to gRPC as empty values
    latin = ("Bearer " + a + "\xe9").encode("latin-1")
    add("non-ascii", (name, auth(latin)), ("rest",))
    add("non-ascii", (name, auth(f"Bearer {a[:-1]}\xe4".encode("latin-1"))), ("rest",))
    add("non-ascii", (("x-container-name", "alph\xe4".encode("latin-1")), auth(f"Bearer {a}")), ("rest",))
    add(
        "non-ascii", (("x-container-name", "\u0430lpha".encode()), auth(f"Bearer {a}")), ("rest",)
    )  # Cyrillic a
    add("non-ascii", (name, auth(f"Bearer \u2003{a}".encode())), ("rest",))
    # gRPC only: binary metadata named like the credentials
    add("binary", (name, ("authorization-bin", f"Bearer {a}".encode())), ("grpc",))
    add("binary", (("x-container-name-bin", b"alpha"), auth(f"Bearer {a}")), ("grpc",))
    # duplicated headers: ambiguous, refused whatever the order
    add("duplicate-name", (name, ("x-container-name", "beta"), auth(f"Bearer {a}")))
    add("duplicate-name", (("x-container-name", "beta"), name, auth(f"Bearer {a}")))
    add("duplicate-name", (name, name, auth(f"Bearer {a}")))
    add("duplicate-auth", (name, auth(f"Bearer {a}"), auth(f"Bearer {generate_key()}")))
    add("duplicate-auth", (name, auth(f"Bearer {generate_key()}"), auth(f"Bearer {a}")))
    add("duplicate-auth", (name, auth(f"Bearer {a}"), auth(f"Bearer {a}")))
    add("duplicate-auth", (name, auth(f"Bearer {b}"), auth(f"Bearer {a}")))
    # spoofed proxy and client-certificate headers naming a container
    forged_cert = (
        f'By=spiffe://cluster.local/ns/kronos/sa/alpha;Hash={MARK};Subject="CN=alpha";URI=spiffe://alpha'
    )
    for spoof in (
        ("x-forwarded-for", "127.0.0.1"),
        ("x-real-ip", "10.0.0.1"),
        ("x-forwarded-host", "localhost"),
        ("x-forwarded-client-cert", forged_cert),
        ("x-client-cert", f"CN=alpha,O={MARK}"),
        ("x-ssl-client-cn", "alpha"),
        ("ssl-client-subject-dn", "CN=alpha"),
        ("x-client-verify", "SUCCESS"),
        ("x-authenticated-user", "alpha"),
        ("x-remote-user", "alpha"),
        ("x-forwarded-user", "alpha"),
    ):
        add("spoofed-proxy", (name, spoof))
        add("spoofed-proxy", (name, spoof, auth(f"Bearer {generate_key()}")))
    # forged bridge tokens (the in-process bridge's x-kronos-bridge), alone or with a name
    for token in (secrets.token_urlsafe(32), f"{MARK}-bridge", "", "true", "1"):
        add("forged-bridge", (name, (BRIDGE_METADATA, token)))
        add("forged-bridge", ((BRIDGE_METADATA, token), auth(f"Bearer {generate_key()}")))
        add("forged-bridge", (("x-container-name", "kronos-bridge"), (BRIDGE_METADATA, token)))
    # names that look trusted (none is configured: KRONOS_TRUSTED_CONTAINERS is empty)
    for trusted in (
        "dev",
        "kronos-bridge",
        "bridge",
        "localhost",
        "127.0.0.1",
        "internal",
        "trusted",
        "admin",
        "root",
        "system",
        "kube-system",
        "default",
        "prometheus",
        "*",
        "alpha,beta",
        "alpha beta",
        "../alpha",
        f"trusted-{MARK}",
    ):
        add("trusted-looking", (("x-container-name", trusted),))
        add("trusted-looking", (("x-container-name", trusted), auth(f"Bearer {generate_key()}")))
    # beta's valid key on a method beta may not call: PERMISSION_DENIED, no forecast
    add("not-permitted", (("x-container-name", "beta"), auth(f"Bearer {b}")))
    return shapes


def raw_requests(keys: Keys) -> list[bytes]:
    """HTTP/1.1 requests whose header bytes the server's HTTP parser refuses (400)."""
    payload = json.dumps(body(30, 2)).encode()
    lines = (
        b"Authorization: Bearer \x01" + keys.alpha.encode(),
        b"Authorization: Bearer " + keys.alpha.encode() + b"\x00",
        b"Authorization: Bearer\r\n " + keys.alpha.encode(),  # obsolete line folding
        b"X-Container-Name: alpha\x7f",
        b"Authorization : Bearer " + keys.alpha.encode(),  # space before the colon
    )
    out = []
    for line in lines:
        out.append(
            b"POST /v1/predict/single HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Container-Name: alpha\r\n"
            + line
            + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(payload)
            + payload
        )
    return out


def plan(keys: Keys, rng: random.Random) -> list[Attempt]:
    """ATTEMPTS attempts: every shape at least once, then random ones, over random methods."""
    shapes = catalogue(keys, rng)
    flat = [(category, t, h) for category, items in shapes.items() for t, h in items]
    chosen = flat + [rng.choice(flat) for _ in range(ATTEMPTS - len(flat) - len(raw_requests(keys)))]
    attempts = []
    for category, transport, headers in chosen:
        methods = (
            ("single", "batch", "stream", "backtest", "models")
            if transport == "grpc"
            else ("single", "batch", "backtest", "models")
        )
        method = rng.choice(methods)
        if category == "not-permitted":
            method = rng.choice([m for m in methods if m != "models"])
        expect = {"not-permitted": "permission_denied", "oversized": "too_large"}.get(
            category, "unauthenticated"
        )
        attempts.append(Attempt(category, transport, headers, method, expect))
    attempts += [
        Attempt("bad-http", "raw", ((str(i), raw),), "single", "bad_http")
        for i, raw in enumerate(raw_requests(keys))
    ]
    rng.shuffle(attempts)
    assert len(attempts) == ATTEMPTS
    return attempts


# --- sending ------------------------------------------------------------------------------


def grpc_call(stub: pb_grpc.KronosPredictorStub, method: str, md: tuple[Header, ...]) -> str:
    """The status code name of one call ("OK" if it was answered)."""
    try:
        if method == "single":
            stub.PredictSingle(request(30, 2), metadata=md, timeout=30)
        elif method == "batch":
            batch = pb.PredictBatchRequest(items=[request(30, 2), request(20, 1, start=5)])
            stub.PredictBatch(batch, metadata=md, timeout=30)
        elif method == "stream":
            list(stub.PredictStream(request(30, 2), metadata=md, timeout=30))
        elif method == "backtest":
            stub.Backtest(backtest_request(origins=2), metadata=md, timeout=30)
        else:
            stub.GetModelInfo(pb.GetModelInfoRequest(), metadata=md, timeout=30)
    except grpc.RpcError as err:
        return str(err.code().name)
    return "OK"


def rest_call(http: httpx.Client, method: str, headers: tuple[Header, ...]) -> str:
    # as bytes: duplicates and non-ASCII values go out exactly as given
    raw = [(k.encode(), v if isinstance(v, bytes) else v.encode()) for k, v in headers]
    if method == "models":
        reply = http.get(REST_PATH[method], headers=raw)
    else:
        payloads = {"single": body(30, 2), "backtest": backtest_body(origins=2)}
        payload = payloads.get(method, {"items": [body(30, 2), body(20, 1, start=5)]})
        reply = http.post(REST_PATH[method], json=payload, headers=raw)
    if reply.status_code != 200:
        error = reply.json()
        assert set(error) == {"error", "message", "details", "request_id"}, reply.text
    return str(reply.status_code)


def raw_call(port: int, raw: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(raw)
        head = sock.recv(64)
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    assert match, head
    return match.group(1).decode()


def send(served: Served, attempt: Attempt) -> str:
    if attempt.transport == "grpc":
        return grpc_call(served.stub, attempt.method, attempt.headers)
    if attempt.transport == "rest":
        return rest_call(served.http, attempt.method, attempt.headers)
    raw = attempt.headers[0][1]
    assert isinstance(raw, bytes)
    return raw_call(served.process.port("HTTP"), raw)


def allowed(attempt: Attempt) -> set[str]:
    if attempt.expect == "permission_denied":
        return {"PERMISSION_DENIED"} if attempt.transport == "grpc" else {"403"}
    if attempt.expect == "too_large":
        return {"RESOURCE_EXHAUSTED"} if attempt.transport == "grpc" else {"413"}
    if attempt.expect == "bad_http":
        return {"400"}
    return {"UNAUTHENTICATED"} if attempt.transport == "grpc" else {"401"}


def legitimate(served: Served, n: int) -> bool:
    """A valid call of alpha, alternating transports and methods; it must be served.
    True if it was a forecast (not GetModelInfo)."""
    auth = (("x-container-name", "alpha"), ("authorization", f"Bearer {served.keys.alpha}"))
    if n % 2 == 0:
        method = ("single", "batch", "stream", "models")[n // 2 % 4]
        assert grpc_call(served.stub, method, auth) == "OK", method
        return method != "models"
    method = ("single", "batch", "models")[n // 2 % 3]
    headers = {"X-Container-Name": "alpha", "Authorization": f"Bearer {served.keys.alpha}"}
    if method == "models":
        reply = served.http.get("/v1/models", headers=headers)
        assert reply.status_code == 200 and reply.json()["models"][0]["max_context"] == 64
    elif method == "single":
        reply = served.http.post("/v1/predict/single", json=body(30, 2), headers=headers)
        assert reply.status_code == 200 and len(reply.json()["prediction"]) == 2, reply.text
    else:
        reply = served.http.post("/v1/predict/batch", json={"items": [body(30, 2)]}, headers=headers)
        assert reply.status_code == 200 and len(reply.json()[0]["prediction"]) == 2, reply.text
    return method != "models"


# --- metrics ------------------------------------------------------------------------------


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(served: Served) -> tuple[str, Samples]:
    text = served.http.get("/v1/metrics").text
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return text, samples


def total(samples: Samples, name: str, keep: Callable[[dict[str, str]], bool] = lambda _: True) -> float:
    return sum(v for (n, labels), v in samples.items() if n == name and keep(dict(labels)))


def predictions_served(samples: Samples) -> float:
    """Successful forecast calls, REST and native gRPC (not GetModelInfo)."""

    def forecast(labels: dict[str, str]) -> bool:
        route = labels.get("route", "")
        return labels.get("status") == "success" and ("/Predict" in route or route.startswith("/v1/predict/"))

    return total(samples, "kronos_requests_total", forecast)


# --- the test -----------------------------------------------------------------------------


def test_a_thousand_hostile_attempts_get_nothing_and_leak_nothing(served: Served) -> None:
    rng = random.Random(SEED)
    attempts = plan(served.keys, rng)
    _, before = scrape(served)
    valid_forecasts = 0
    tally: Counter[str] = Counter()
    by_category: Counter[tuple[str, str]] = Counter()
    started = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        for chunk_start in range(0, ATTEMPTS, VALID_EVERY):
            chunk = attempts[chunk_start : chunk_start + VALID_EVERY]
            for attempt, answer in zip(chunk, pool.map(lambda a: send(served, a), chunk), strict=True):
                assert answer in allowed(attempt), (
                    attempt.category,
                    attempt.transport,
                    attempt.method,
                    answer,
                )
                tally[f"{attempt.transport}:{answer}"] += 1
                by_category[(attempt.category, answer)] += 1
            valid_forecasts += legitimate(served, chunk_start // VALID_EVERY)
    elapsed = time.monotonic() - started
    print(f"\n{ATTEMPTS} attempts in {elapsed:.1f}s, by transport and answer: {dict(sorted(tally.items()))}")
    print("by category:", {f"{c}:{a}": k for (c, a), k in sorted(by_category.items())})
    assert sum(tally.values()) == ATTEMPTS
    assert not any(answer in ("OK", "200") for answer in tally)
    assert {c for c, _ in by_category} >= {"missing", "duplicate-auth", "forged-bridge", "not-permitted"}

    # still serving the legitimate caller after the attack, on both transports
    valid_forecasts += legitimate(served, 0) + legitimate(served, 1)
    beta = (("x-container-name", "beta"), ("authorization", f"Bearer {served.keys.beta}"))
    assert grpc_call(served.stub, "models", beta) == "OK"

    # all but the attempts refused before any interceptor (metadata limit, HTTP parser)
    reached_auth = sum(k for (c, _), k in by_category.items() if c not in ("oversized", "bad-http"))
    assert reached_auth == sum(k for key, k in tally.items() if key.split(":")[1] in REFUSED)

    def settled() -> bool:
        _, now = scrape(served)
        grown = total(now, "kronos_security_events_total") - total(before, "kronos_security_events_total")
        return (
            grown == reached_auth and predictions_served(now) - predictions_served(before) == valid_forecasts
        )

    poll(settled, timeout=20)
    text, after = scrape(served)

    # every refusal reached the metrics exactly once: security events and request outcomes
    def blocked(samples: Samples) -> float:
        return total(samples, "kronos_security_events_total", lambda labels: labels["event"] == "blocked")

    not_permitted = (
        by_category[("not-permitted", "PERMISSION_DENIED")] + by_category[("not-permitted", "403")]
    )
    assert blocked(after) - blocked(before) == not_permitted

    def refusals(samples: Samples) -> float:
        return total(
            samples, "kronos_requests_total", lambda lb: lb["status"] in ("unauthorized", "forbidden")
        )

    assert refusals(after) - refusals(before) == reached_auth
    # no forecast beyond the legitimate ones
    assert predictions_served(after) - predictions_served(before) == valid_forecasts

    # bounded labels: configured names or "unknown", never what the attacker claimed
    containers = {dict(labels)["container"] for (n, labels) in after if n == "kronos_security_events_total"}
    assert containers <= {"alpha", "beta", "unknown"} and "unknown" in containers
    label_values = {value for (_, labels) in after for _, value in labels}
    attacker_values = attacker_strings(attempts)
    assert not label_values & attacker_values, label_values & attacker_values
    assert MARK not in text

    # the complete log output: stop the server (it drains and exits 0), then read every line
    process = served.process
    process.signal(signal.SIGTERM)
    assert process.proc.wait(60) == 0
    poll(lambda: any("signal received" in line for line in process.lines), timeout=10)
    time.sleep(0.5)  # the reader thread drains the pipe to its end
    logs = "".join(process.lines)
    assert "request finished" in logs and "call refused" in logs
    records = process.json_lines()
    for record in records:
        assert record.get("container") in (None, "alpha", "beta", "unknown"), record
        assert set(record) <= LOG_FIELDS, set(record) - LOG_FIELDS
    access = {r["message"]: set(r) for r in records if r["message"].endswith("request finished")}
    assert access["request finished"] >= {
        "request_id",
        "endpoint",
        "container",
        "status",
        "latency_ms",
        "code",
    }
    assert access["http request finished"] >= {"request_id", "method", "path", "http_status", "status"}
    refused_lines = [r for r in records if " call refused: " in r["message"]]
    assert len(refused_lines) == reached_auth and all(r["level"] == "WARNING" for r in refused_lines)
    secrets_used = secret_strings(served.keys, attempts)
    for haystack, where in ((logs, "logs"), (text, "metrics")):
        leaked = [s for s in secrets_used if s in haystack]
        assert not leaked, f"{len(leaked)} key/hash value(s) in the {where}"
        assert not re.search(r"ks_[A-Za-z0-9_-]{20,}", haystack), where
    assert MARK not in logs
    for value in attacker_values - {"alpha", "beta"}:
        if len(value) >= 12:
            assert value not in logs, value


def headers_sent(attempt: Attempt) -> Iterator[tuple[str, str]]:
    """(name, value) of each header an attempt sent through a client (raw requests aside)."""
    if attempt.transport != "raw":
        for name, value in attempt.headers:
            yield name, value.decode("latin-1") if isinstance(value, bytes) else value


def attacker_strings(attempts: list[Attempt]) -> set[str]:
    """Every header value an attacker sent (the configured names and empty values aside)."""
    return {v.strip() for a in attempts for _, v in headers_sent(a)} - {"", "alpha", "beta"}


def secret_strings(keys: Keys, attempts: list[Attempt]) -> set[str]:
    """Both valid keys, their stored hashes, and every key-like token (and its hash) sent as
    a credential or a bridge token."""
    store = load_keys(keys.path)
    out = {keys.alpha, keys.beta, *(entry.key_sha256 for entry in store.containers.values())}
    assert out >= {hash_key(keys.alpha), hash_key(keys.beta)}
    for attempt in attempts:
        for name, value in headers_sent(attempt):
            if name in ("authorization", "authorization-bin", BRIDGE_METADATA):
                for token in value.split():
                    if len(token) >= 12:
                        out.update({token, hash_key(token)})
    return out
