"""flagd's own in-process provider (openfeature-provider-flagd, resolver IN_PROCESS) reading the
daemon's flagd sync port: the Go daemon, built from this tree, runs each conformance flag file as
a file source with `flagdSync` on; flagd's provider syncs the snapshot over gRPC and evaluates it
with flagd's evaluator, flagsync's provider reads the same snapshot from the daemon's output file.
Every case must answer the same (value, variant, reason) except the evaluator differences already
listed for flagd's file mode (test_flagd_crosscheck.EXCLUDED, python/DIFFERENCES.md) and the few
below, which come from flagd reading the snapshot's canonical encoding instead of the hand-written
conformance file (docs/FORMAT.md, "flagd's providers on the sync port"). A change made in the
source reaches the flagd provider through the stream."""

from __future__ import annotations

import logging
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFORMANCE, free_port, wait_for
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from test_flagd_crosscheck import CASES, EXCLUDED, SUITES, _resolve

from flagsync import FileStore
from flagsync.openfeature import FlagSyncProvider

# Differences that appear only when flagd reads the snapshot (the daemon's canonical encoding)
# rather than the conformance file itself: case name -> why. (The $ref chain of limits/ that
# flagd cannot resolve from $evaluators sorted by name evaluates: the daemon inlines $refs.)
SNAPSHOT_ENCODING = {
    "basic/integer 2^62 (exact double) as integer": (
        "the snapshot writes numbers as ECMAScript number text, so 2^62 is written "
        "4611686018427388000 (the same double); flagd's Python provider parses integer text as an "
        "exact Python int and returns 4611686018427388000, flagsync returns the double's value "
        "4611686018427387904."
    ),
    "basic/integral 1e19 outside int64 is a mismatch": (
        "1e19 is written 10000000000000000000 (ECMAScript number text); flagd's Python provider "
        "reads that as an exact Python int and serves it as an integer, flagsync refuses an "
        "integer outside int64 (TYPE_MISMATCH, caller default) in every reader."
    ),
}

# File-mode differences (EXCLUDED) that vanish through the daemon: case name -> why.
SAME_THROUGH_SNAPSHOT = {
    "basic/3.0 asked as integer is 3": (
        "the snapshot writes 3.0 as 3 (ECMAScript number text), so flagd-core reads an integer."
    ),
    "flagd/integer request of 3.0 is 3": "the same: 3.0 is written 3.",
    "errors/unknown operator in an untaken branch": (
        "the daemon refuses the invalid flag and never publishes it: both answer FLAG_NOT_FOUND."
    ),
    "limits/a rule 65 levels deep once $refs are inlined is a PARSE_ERROR": (
        "the daemon refuses the too-deep flag and never publishes it: both answer FLAG_NOT_FOUND."
    ),
    **{
        f"refs/nested $ref {who}": (
            "the daemon sends flagd clients every $ref inlined (flagdsync/inline.go), so flagd "
            "evaluates the nested $ref as flagsync compiled it."
        )
        for who in ("staff", "beta", "blocked", "neither")
    },
}


class Daemon:
    """`flagsync run` with one file source and the flagd sync port on a free loopback port."""

    def __init__(self, go_cli: Path, workdir: Path, flags: Path, flag_set_id: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.out = workdir / "flags.json"
        self.http_port = free_port()
        self.sync_port = free_port()
        cfg = workdir / "flagsync.yaml"
        cfg.write_text(
            f"""flagSetId: {flag_set_id}
schedule: "@every 1h"
watchDebounce: 5ms
sources:
  - {{name: conformance, type: file, path: "{flags}"}}
outputs:
  file: {{path: "{self.out}"}}
http: {{listen: "127.0.0.1:{self.http_port}"}}
flagdSync: {{enabled: true, listen: "127.0.0.1:{self.sync_port}"}}
log: {{level: warn}}
""",
            encoding="utf-8",
        )
        self.go_cli, self.workdir, self.cfg = go_cli, workdir, cfg
        self.start()

    def start(self) -> None:
        self.log = (self.workdir / "daemon.log").open("ab")
        self.proc = subprocess.Popen(
            [str(self.go_cli), "run", "--config", str(self.cfg)],
            cwd=self.workdir,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        if not wait_for(self.ready, timeout=30):
            self.stop()
            log = (self.workdir / "daemon.log").read_text()
            raise RuntimeError(f"flagsync run did not get ready: {log}")

    def kill(self) -> None:
        """kill -9: no goodbye to the clients."""
        self.proc.kill()
        self.proc.wait(timeout=15)
        self.log.close()

    def ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.http_port}/readyz"
            with urllib.request.urlopen(url, timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def metric(self, name: str) -> float:
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        raise AssertionError(f"{name} not on /metrics")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=15)
        self.log.close()


def flagd_in_process(port: int, selector: str | None = None, **kw: Any) -> FlagdProvider:
    return FlagdProvider(
        resolver_type=ResolverType.IN_PROCESS,
        host="127.0.0.1",
        port=port,
        selector=selector,
        deadline_ms=10_000,
        **kw,
    )


@pytest.fixture(scope="module")
def clients(
    go_cli: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[OpenFeatureClient, OpenFeatureClient]]]:
    """Per flag file: (flagd in-process client on the daemon's sync port, flagsync client on
    the daemon's output file)."""
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)
    daemons: list[Daemon] = []
    out: dict[str, tuple[OpenFeatureClient, OpenFeatureClient]] = {}
    try:
        for i, s in enumerate(SUITES):
            set_id = f"conformance-{i}"
            d = Daemon(go_cli, tmp_path_factory.mktemp("daemon"), CONFORMANCE / s["flags"], set_id)
            daemons.append(d)
            # Half of them ask for the flag set by selector (sent as the Flagd-Selector header).
            flagd = flagd_in_process(d.sync_port, set_id if i % 2 else None)
            api.set_provider_and_wait(flagd, domain="flagd-ip:" + s["flags"])
            api.set_provider_and_wait(
                FlagSyncProvider(FileStore(d.out)), domain="flagsync-ip:" + s["flags"]
            )
            out[s["flags"]] = (
                api.get_client("flagd-ip:" + s["flags"]),
                api.get_client("flagsync-ip:" + s["flags"]),
            )
        yield out
    finally:
        api.shutdown()
        for d in daemons:
            d.stop()


def _answers(clients: dict[str, tuple[OpenFeatureClient, OpenFeatureClient]]) -> dict[str, Any]:
    diffs = {}
    for s, case in CASES:
        flagd, ours = clients[s["flags"]]
        a, b = _resolve(ours, case), _resolve(flagd, case)
        if a != b:
            diffs[case["name"]] = (a, b)
    return diffs


def test_in_process_differs_only_where_file_mode_does(
    clients: dict[str, tuple[OpenFeatureClient, OpenFeatureClient]],
) -> None:
    """Every conformance case: the same answer through the sync port, except the listed
    evaluator differences, each of which still differs (so the list stays exact)."""
    diffs = _answers(clients)
    listed = (set(EXCLUDED) - set(SAME_THROUGH_SNAPSHOT)) | set(SNAPSHOT_ENCODING)
    unexpected = {n: d for n, d in diffs.items() if n not in listed}
    assert unexpected == {}, f"differences not listed: {unexpected!r}"
    missing = sorted(n for n in listed if n not in diffs)
    assert missing == [], missing


def test_snapshot_encoding_differences_are_documented(repo: Path) -> None:
    """docs/FORMAT.md names every case of SNAPSHOT_ENCODING and SAME_THROUGH_SNAPSHOT."""
    assert set(SAME_THROUGH_SNAPSHOT) <= set(EXCLUDED)
    text = (repo / "docs" / "FORMAT.md").read_text(encoding="utf-8")
    for name in [*SNAPSHOT_ENCODING, *SAME_THROUGH_SNAPSHOT]:
        assert f"`{name}`" in text, name


def test_source_change_reaches_the_flagd_provider(go_cli: Path, tmp_path: Path) -> None:
    flags = tmp_path / "flags.yaml"

    def write(color: str) -> None:
        tmp = flags.with_suffix(".tmp")
        tmp.write_text(
            "flags:\n  color:\n    state: ENABLED\n"
            f'    variants: {{c: "{color}"}}\n    defaultVariant: c\n',
            encoding="utf-8",
        )
        tmp.replace(flags)

    write("red")
    d = Daemon(go_cli, tmp_path / "d", flags, "change")
    try:
        api.set_provider_and_wait(flagd_in_process(d.sync_port, "change"), domain="flagd-change")
        client = api.get_client("flagd-change")
        assert client.get_string_value("color", "none") == "red"
        start = time.monotonic()
        write("blue")
        assert wait_for(lambda: client.get_string_value("color", "none") == "blue", timeout=15)
        assert time.monotonic() - start < 15
    finally:
        api.shutdown()
        d.stop()


def test_stream_recycling_and_frequent_pings(go_cli: Path, tmp_path: Path) -> None:
    """A provider that pings every 50 ms and recycles its stream every 300 ms (its stream
    deadline) keeps getting the snapshot at each reconnect and still sees a change."""
    flags = tmp_path / "flags.yaml"
    flags.write_text(
        'flags:\n  color:\n    state: ENABLED\n    variants: {c: "red"}\n    defaultVariant: c\n',
        encoding="utf-8",
    )
    d = Daemon(go_cli, tmp_path / "d", flags, "recycle")
    try:
        provider = flagd_in_process(
            d.sync_port,
            keep_alive_time=50,
            stream_deadline_ms=300,
            retry_backoff_ms=100,
            retry_backoff_max_ms=200,
        )
        api.set_provider_and_wait(provider, domain="flagd-recycle")
        client = api.get_client("flagd-recycle")
        assert client.get_string_value("color", "none") == "red"
        # Each recycled stream is a new SyncFlags call answered with the snapshot.
        assert wait_for(lambda: d.metric("flagsync_flagd_sync_sent_total") >= 4, timeout=15)
        tmp = flags.with_suffix(".tmp")
        tmp.write_text(flags.read_text().replace("red", "blue"), encoding="utf-8")
        tmp.replace(flags)
        assert wait_for(lambda: client.get_string_value("color", "none") == "blue", timeout=15)
    finally:
        api.shutdown()
        d.stop()


def test_provider_reconnects_after_the_daemon_is_killed(go_cli: Path, tmp_path: Path) -> None:
    """kill -9 of the daemon: flagd's provider keeps its last flags, reconnects to the
    restarted daemon and sees a change made meanwhile."""
    flags = tmp_path / "flags.yaml"
    doc = 'flags:\n  color:\n    state: ENABLED\n    variants: {c: "red"}\n    defaultVariant: c\n'
    flags.write_text(doc, encoding="utf-8")
    d = Daemon(go_cli, tmp_path / "d", flags, "restart")
    try:
        provider = flagd_in_process(d.sync_port, retry_backoff_ms=100, retry_backoff_max_ms=500)
        api.set_provider_and_wait(provider, domain="flagd-restart")
        client = api.get_client("flagd-restart")
        assert client.get_string_value("color", "none") == "red"
        d.kill()
        assert client.get_string_value("color", "none") == "red"  # the last flags stay
        flags.write_text(doc.replace("red", "blue"), encoding="utf-8")
        d.start()
        assert wait_for(lambda: client.get_string_value("color", "none") == "blue", timeout=30)
    finally:
        api.shutdown()
        d.stop()
