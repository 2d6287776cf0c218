"""End to end with the real Go daemon: `flagsync sync --once` publishes the quickstart flags
to a file and to Redis; the Python readers load both, and the snapshot is exactly the
canonical encoding the Python package computes, with metadata.version = its revision."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import REPO, RedisServer

from flagsync import FileStore, RedisStore, Type
from flagsync.canonical import encode_document, revision
from flagsync.flagset import load, parse


def test_daemon_snapshot_file_and_redis(
    go_cli: Path, tmp_path: Path, redis_server: RedisServer
) -> None:
    out = tmp_path / "flags.json"
    cfg = tmp_path / "flagsync.yaml"
    cfg.write_text(
        f"""flagSetId: e2e
sources:
  - name: git-flags
    type: file
    path: {REPO / "examples" / "quickstart" / "flags.yaml"}
  - name: env-overrides
    type: env
    prefix: FLAGSYNC_FLAG_
outputs:
  file:
    path: {out}
  redis:
    url: {redis_server.url}
    prefix: flagsync:e2e
"""
    )
    env = dict(os.environ, FLAGSYNC_FLAG_BETA_MODE="true")
    r = subprocess.run(
        [str(go_cli), "sync", "--once", "--config", str(cfg)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr

    data = out.read_bytes()
    doc = parse(data)
    assert encode_document(doc) == data  # the daemon writes the canonical encoding
    assert doc["metadata"]["version"] == revision(doc)
    fs, problems = load(data)
    assert problems == []
    assert fs.flag_set_id == "e2e" and fs.generation > 0

    file_store = FileStore(out)
    redis_store = RedisStore(redis_server.url, "flagsync:e2e", start=False)
    try:
        for store in (file_store, redis_store):
            assert store.ready and store.revision == fs.revision
            staff = {"targetingKey": "1", "email": "alice@example.com"}
            assert store.is_active("new_dashboard", staff) is True
            assert store.is_active("new_dashboard", {"email": "carol@else.org"}) is False
            assert store.is_active("new_auth_flow", {"email": "ann@example.com"}) is True
            assert store.is_active("beta_mode") is True  # the env override won
            r2 = store.evaluate("checkout_button_color", Type.STRING, "")
            assert r2.value == "#1f6feb" and r2.metadata["owner"] == "team-checkout"
    finally:
        file_store.close()
        redis_store.close()
