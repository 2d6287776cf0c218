"""End to end with the real Go daemon: `flagsync sync --once` publishes the quickstart flags
to a file and to Redis; the Python readers load both, and the snapshot is exactly the
canonical encoding the Python package computes, with metadata.version = its revision."""

from __future__ import annotations

from pathlib import Path

from conftest import RedisServer, publish_quickstart

from flagsync import FileStore, RedisStore, Type
from flagsync.canonical import encode_document, revision
from flagsync.flagset import load, parse


def test_daemon_snapshot_file_and_redis(
    go_cli: Path, tmp_path: Path, redis_server: RedisServer
) -> None:
    out = publish_quickstart(
        go_cli, tmp_path, redis_server.url, "flagsync:e2e", {"FLAGSYNC_FLAG_BETA_MODE": "true"}
    )

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
