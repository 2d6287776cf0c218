"""The official OpenFeature OFREP provider (openfeature-provider-ofrep, a client nobody
here wrote) against flagsync's OFREP servers: ofrep/cmd/ofrep-testserver, built with
`go build` and serving a flag file on a free 127.0.0.1 port, and the running daemon
(`flagsync run` with a file source), whose HTTP server mounts the same handler."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

REPO = Path(__file__).resolve().parents[2]
API_KEY = "test-key-123"

FLAGS = {
    "flags": {
        "dark_mode": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]},
            "metadata": {"owner": "team-web"},
        },
        "button_color": {
            "state": "ENABLED",
            "variants": {"blue": "#1f6feb", "green": "#2da44e"},
            "defaultVariant": "blue",
        },
        "max_items": {
            "state": "ENABLED",
            "variants": {"few": 10, "many": 250},
            "defaultVariant": "many",
        },
        "sample_rate": {
            "state": "ENABLED",
            "variants": {"low": 0.05, "high": 0.5},
            "defaultVariant": "low",
        },
        "limits": {
            "state": "ENABLED",
            "variants": {"v1": {"rps": 100, "burst": 20}},
            "defaultVariant": "v1",
        },
        "retired": {
            "state": "DISABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on",
        },
    },
    "metadata": {"flagSetId": "pytest"},
}


def _build(tmp: Path, name: str, package: str) -> Path:
    binary = tmp / name
    if not binary.exists():
        subprocess.run(["go", "build", "-o", str(binary), package], cwd=REPO, check=True)
    return binary


def _start_testserver(tmp: Path, api_key: str | None) -> tuple[subprocess.Popen[str], str]:
    binary = _build(tmp, "ofrep-testserver", "./ofrep/cmd/ofrep-testserver")
    flags = tmp / "flags.json"
    flags.write_text(json.dumps(FLAGS))
    args = ["-api-key", api_key] if api_key else []
    proc = subprocess.Popen(
        [str(binary), "-flags", str(flags), "-addr", "127.0.0.1:0", "-exit-on-stdin-eof", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line.startswith("listening on http://127.0.0.1:"), line
    return proc, line.removeprefix("listening on ")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_daemon(
    tmp: Path, api_key: str | None, ofrep_options: str = ""
) -> tuple[subprocess.Popen[str], str]:
    """`flagsync run` with a file source (tmp/flags.json, watched): the daemon's own OFREP
    endpoint. ofrep_options are more http.ofrep keys, in YAML flow style ("rateLimit: 1")."""
    binary = _build(tmp, "flagsync", "./cmd/flagsync")
    flags = tmp / "flags.json"
    flags.write_text(json.dumps({"flags": FLAGS["flags"]}))
    listen = f"127.0.0.1:{_free_port()}"
    keys = (['apiKeys: ["${OFREP_API_KEY}"]'] if api_key else []) + (
        [ofrep_options] if ofrep_options else []
    )
    ofrep = f"  ofrep: {{{', '.join(keys)}}}\n" if keys else ""
    config = tmp / "flagsync.yaml"
    config.write_text(
        f"flagSetId: pytest\n"
        f'schedule: "@every 1h"\n'
        f"sources:\n  - {{name: git, type: file, path: {json.dumps(str(flags))}}}\n"
        f"outputs:\n  file: {{path: {json.dumps(str(tmp / 'out' / 'flags.json'))}}}\n"
        f"http:\n  listen: {json.dumps(listen)}\n{ofrep}"
    )
    env = dict(os.environ, OFREP_API_KEY=api_key or "")
    proc = subprocess.Popen(
        [str(binary), "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    url = f"http://{listen}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"flagsync run did not become ready at {url}")
        time.sleep(0.05)


def _start(tmp: Path, kind: str, api_key: str | None = None) -> tuple[subprocess.Popen[str], str]:
    if kind == "flagsync-run":
        return _start_daemon(tmp, api_key)
    return _start_testserver(tmp, api_key)


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(timeout=10)


# Every test runs against the running daemon (`flagsync run`) and the standalone
# OFREP test server: both serve the same ofrep package.
SERVERS = ["flagsync-run", "ofrep-testserver"]


@pytest.fixture(scope="module", params=SERVERS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    proc, url = _start(tmp_path_factory.mktemp("ofrep"), request.param)
    yield url
    _stop(proc)


@pytest.fixture(scope="module", params=SERVERS)
def auth_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    proc, url = _start(tmp_path_factory.mktemp("ofrep-auth"), request.param, API_KEY)
    yield url
    _stop(proc)


def _client(url: str, domain: str, key: str | None = None) -> api.OpenFeatureClient:
    headers = (lambda: {"X-API-Key": key}) if key is not None else None
    api.set_provider(OFREPProvider(url, headers_factory=headers), domain=domain)
    return api.get_client(domain)


def test_values_of_every_type(server: str) -> None:
    client = _client(server, "ofrep-types")
    ctx = EvaluationContext("user-1", {"email": "ann@example.com"})

    d = client.get_boolean_details("dark_mode", False, ctx)
    assert (d.value, d.variant, d.reason, d.error_code) == (
        True,
        "on",
        Reason.TARGETING_MATCH,
        None,
    )
    assert d.flag_metadata["owner"] == "team-web"
    assert d.flag_metadata["flagSetId"] == "pytest"

    d = client.get_boolean_details(
        "dark_mode", True, EvaluationContext("user-2", {"email": "x@y.org"})
    )
    assert (d.value, d.variant, d.reason) == (False, "off", Reason.TARGETING_MATCH)

    s = client.get_string_details("button_color", "none", ctx)
    assert (s.value, s.variant, s.reason) == ("#1f6feb", "blue", Reason.STATIC)

    i = client.get_integer_details("max_items", 1, ctx)
    assert (i.value, i.variant) == (250, "many")

    f = client.get_float_details("sample_rate", 1.0, ctx)
    assert (f.value, f.variant) == (0.05, "low")

    o = client.get_object_details("limits", {}, ctx)
    assert o.value == {"rps": 100, "burst": 20}


def test_disabled_flag_yields_code_default(server: str) -> None:
    client = _client(server, "ofrep-disabled")
    d = client.get_boolean_details("retired", False, EvaluationContext("user-1"))
    assert d.value is False
    assert d.reason == Reason.DISABLED
    assert d.error_code is None


def test_missing_flag_and_type_mismatch(server: str) -> None:
    client = _client(server, "ofrep-errors")
    d = client.get_boolean_details("no_such_flag", True, EvaluationContext("user-1"))
    assert d.value is True
    assert d.error_code == ErrorCode.FLAG_NOT_FOUND

    d2 = client.get_boolean_details("button_color", False, EvaluationContext("user-1"))
    assert d2.value is False
    assert d2.error_code == ErrorCode.TYPE_MISMATCH


def test_api_key(auth_server: str) -> None:
    ok = _client(auth_server, "ofrep-auth-ok", API_KEY)
    assert ok.get_string_value("button_color", "none", EvaluationContext("u")) == "#1f6feb"

    wrong = _client(auth_server, "ofrep-auth-wrong", "nope")
    d = wrong.get_string_details("button_color", "none", EvaluationContext("u"))
    assert d.value == "none"
    assert d.error_code == ErrorCode.GENERAL
    assert d.error_message is not None and "forbidden" in d.error_message

    anon = _client(auth_server, "ofrep-auth-anon")
    d = anon.get_string_details("button_color", "none", EvaluationContext("u"))
    assert d.error_code == ErrorCode.GENERAL
    assert d.error_message is not None and "unauthorized" in d.error_message
