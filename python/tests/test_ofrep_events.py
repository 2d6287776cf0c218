"""OFREP change events and load shedding, with official OpenFeature clients against a
running `flagsync run` (file source, watched):

- the OFREP web provider (@openfeature/ofrep-web-provider, npm, run by Node from
  conformance/clients/ofrep-node) with polling off: a change to the flag file reaches it
  only through the daemon's event stream (ADR-0008 eventStreams, refetchEvaluation);
- the Python OFREP provider (openfeature-provider-ofrep), which honours 429 +
  Retry-After by sending nothing until Retry-After has passed.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from test_ofrep_client import API_KEY, FLAGS, REPO, _build, _start_daemon, _stop

HARNESS = REPO / "conformance" / "clients" / "ofrep-node"
# Only turns a hang into a failure; nothing here is timed.
WAIT = 30.0


class NodeClient:
    """harness.mjs as a child process; its stdout lines are JSON events."""

    def __init__(self, url: str, api_key: str, flags: list[str]) -> None:
        node = shutil.which("node")
        assert node, "node is not on PATH (Node 20 is part of the machine set-up)"
        assert (HARNESS / "node_modules" / "@openfeature" / "ofrep-web-provider").is_dir(), (
            "the OFREP web provider is not installed: run scripts/ensure-ofrep-node.sh "
            "(make deps does)"
        )
        env = dict(os.environ, OFREP_URL=url, OFREP_API_KEY=api_key, FLAGS=",".join(flags))
        self.proc = subprocess.Popen(
            [node, "harness.mjs"],
            cwd=HARNESS,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def until(self, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT
        while (left := deadline - time.monotonic()) > 0:
            try:
                ev = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(ev)
            if match(ev):
                return ev
        stderr = ""
        if self.proc.poll() is not None and self.proc.stderr is not None:
            stderr = self.proc.stderr.read()
        raise AssertionError(f"no matching event; saw {self.seen}; stderr {stderr}")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # the harness exits when its stdin closes
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def flagsync_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`flagsync` built once for the module."""
    return _build(tmp_path_factory.mktemp("bin"), "flagsync", "./cmd/flagsync")


@pytest.fixture()
def run_dir(tmp_path: Path, flagsync_bin: Path) -> Path:
    """A test's directory for _start_daemon, holding the module's binary (not rebuilt)."""
    (tmp_path / "flagsync").symlink_to(flagsync_bin)
    return tmp_path


@pytest.fixture()
def daemon(run_dir: Path) -> Iterator[tuple[str, Path]]:
    proc, url = _start_daemon(run_dir, API_KEY)
    yield url, run_dir / "flags.json"
    _stop(proc)


def _write_flags(path: Path, color_variant: str) -> None:
    flags = json.loads(json.dumps(FLAGS["flags"]))
    flags["button_color"]["defaultVariant"] = color_variant
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"flags": flags}))
    tmp.replace(path)


def test_web_provider_refetches_on_event_stream(daemon: tuple[str, Path]) -> None:
    url, flags_file = daemon
    client = NodeClient(url, API_KEY, ["button_color"])
    try:
        ready = client.until(lambda e: e["event"] == "ready")
        assert ready["values"] == {"button_color": "#1f6feb"}
        # The provider found eventStreams in the bulk response and connected with
        # the advertised ticket (EventSource sends no X-API-Key).
        client.until(lambda e: e["event"] == "eventsource-open")
        assert [e["path"] for e in client.seen if e["event"] == "eventsource-open"] == [
            "/ofrep/v1/events"
        ]

        _write_flags(flags_file, "green")
        changed = client.until(lambda e: e["event"] == "changed")
        assert changed["values"] == {"button_color": "#2da44e"}
        # Every flag's result carries the snapshot's version metadata, so the
        # provider counts every flag as changed; the one that did is among them.
        assert "button_color" in changed["flagsChanged"]

        _write_flags(flags_file, "blue")
        changed = client.until(lambda e: e["event"] == "changed")
        assert changed["values"] == {"button_color": "#1f6feb"}
        assert not [e for e in client.seen if e["event"] in ("error", "stale")]
    finally:
        client.close()


def _shed_total(url: str) -> float:
    req = urllib.request.Request(url + "/metrics", headers={"Host": "localhost"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("flagsync_ofrep_shed_total "):
                return float(line.split()[1])
    raise AssertionError("flagsync_ofrep_shed_total not exported")


def test_python_provider_backs_off_per_retry_after(run_dir: Path) -> None:
    proc, url = _start_daemon(run_dir, None, "rateLimit: 0.5, rateBurst: 1")
    try:
        provider = OFREPProvider(url)
        # Count the requests the official client really sends (it still sends them).
        sent: list[str] = []
        post = provider.session.post

        def counting_post(*args: Any, **kwargs: Any) -> Any:
            sent.append(str(args[0]))
            return post(*args, **kwargs)

        provider.session.post = counting_post  # type: ignore[method-assign]
        api.set_provider(provider, domain="ofrep-shed")
        client = api.get_client("ofrep-shed")
        ctx = EvaluationContext("u")

        assert client.get_string_value("button_color", "none", ctx) == "#1f6feb"
        # The burst is spent: the next request is shed with 429 + Retry-After.
        d = client.get_string_details("button_color", "none", ctx)
        assert d.value == "none" and d.error_code == ErrorCode.GENERAL
        assert d.error_message is not None and "Rate limited, retry after: 2" in d.error_message
        assert provider.retry_after is not None
        assert _shed_total(url) == 1
        # Until Retry-After has passed the client sends nothing at all.
        before = len(sent)
        for _ in range(5):
            d = client.get_string_details("button_color", "none", ctx)
            assert d.error_message is not None and "paused due to TooManyRequests" in (
                d.error_message
            )
        assert len(sent) == before
        assert _shed_total(url) == 1
        # After it, evaluations go through again.
        while datetime.now(timezone.utc) <= provider.retry_after:
            time.sleep(0.1)
        assert client.get_string_value("button_color", "none", ctx) == "#1f6feb"
        assert len(sent) == before + 1
    finally:
        _stop(proc)


def test_node_server_provider_backs_off_per_retry_after(run_dir: Path) -> None:
    """@openfeature/ofrep-provider (npm, server-side, no event stream): the same back-off."""
    harness = REPO / "conformance" / "clients" / "ofrep-node-server"
    node = shutil.which("node")
    assert node, "node is not on PATH"
    assert (harness / "node_modules" / "@openfeature" / "ofrep-provider").is_dir(), (
        "the OFREP server provider is not installed: run scripts/ensure-ofrep-node.sh"
    )
    proc, url = _start_daemon(run_dir, None, "rateLimit: 0.5, rateBurst: 1")
    try:
        env = dict(os.environ, OFREP_URL=url, FLAG="button_color", COUNT="4")
        run = subprocess.run(
            [node, "harness.mjs"],
            cwd=harness,
            env=env,
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        assert run.returncode == 0, run.stderr
        first, shed, *paused = [json.loads(line) for line in run.stdout.splitlines()]
        assert (first["value"], first["errorCode"], first["requests"]) == ("#1f6feb", None, 1)
        assert (shed["value"], shed["errorCode"], shed["requests"]) == ("<default>", "GENERAL", 2)
        assert "rate limit" in shed["errorMessage"]
        for p in paused:  # no request at all until Retry-After has passed
            assert (p["value"], p["requests"]) == ("<default>", 2)
            assert "paused due to TooManyRequests" in p["errorMessage"]
        assert _shed_total(url) == 1
    finally:
        _stop(proc)
