"""FileStore: reloads on replace (rename, symlink swap), keeps the last good snapshot,
reports staleness, tells listeners, survives fork."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from conftest import assert_in_fork, wait_for, write_atomic

from flagsync import ChangeEvent, FileStore, RedisStore, open_store
from flagsync.canonical import encode_document


def snapshot(value: bool, extra: str | None = None, gen: int = 1) -> bytes:
    flags = {
        "f": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on" if value else "off",
        },
    }
    if extra:
        flags[extra] = {"state": "ENABLED", "variants": {"a": "a"}, "defaultVariant": "a"}
    return encode_document(
        {"flags": flags, "metadata": {"flagSetId": "t", "flagsync.generation": gen}}
    )


def test_reload_on_atomic_replace(tmp_path: Path) -> None:
    p = tmp_path / "flags.json"
    p.write_bytes(snapshot(False))
    events: list[ChangeEvent] = []
    store = FileStore(p, check_interval=0)
    store.add_listener(events.append)
    assert store.ready and not store.stale
    assert store.is_active("f") is False
    write_atomic(p, snapshot(True, extra="g"))
    assert store.is_active("f") is True
    assert store.get("g") == "a"
    assert [e.kind for e in events] == ["changed"]
    assert events[0].flags_changed == ("f", "g")
    assert events[0].revision == store.flags.revision


def test_check_is_throttled(tmp_path: Path) -> None:
    p = tmp_path / "flags.json"
    p.write_bytes(snapshot(False))
    store = FileStore(p, check_interval=3600)
    write_atomic(p, snapshot(True))
    assert store.is_active("f") is False  # not re-checked within the interval
    assert store.check() is True
    assert store.is_active("f") is True


def test_check_on_read_can_be_switched(tmp_path: Path) -> None:
    p = tmp_path / "flags.json"
    p.write_bytes(snapshot(False))
    store = FileStore(p, check_interval=0, check_on_read=False)
    write_atomic(p, snapshot(True))
    assert store.is_active("f") is False  # reads never touch the file
    assert store.evaluate("f", "boolean", False).value is False
    store.check_on_read = True
    assert store.is_active("f") is True  # the next read checks
    store.check_on_read = False
    write_atomic(p, snapshot(False, gen=2))
    assert store.get("f") is True
    assert store.check() is True  # an explicit check does not turn read checks back on
    write_atomic(p, snapshot(True, gen=3))
    assert store.flags.generation == 2


def test_symlink_swap(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_bytes(snapshot(False))
    b.write_bytes(snapshot(True))
    link = tmp_path / "current.json"
    link.symlink_to(a)
    store = open_store(f"file://{link}", check_interval=0)
    assert isinstance(store, FileStore)
    assert store.is_active("f") is False
    tmp_link = tmp_path / "next"
    tmp_link.symlink_to(b)
    os.replace(tmp_link, link)
    assert store.is_active("f") is True


def test_bad_file_keeps_last_good(tmp_path: Path) -> None:
    p = tmp_path / "flags.json"
    p.write_bytes(snapshot(True))
    events: list[ChangeEvent] = []
    store = FileStore(p, check_interval=0, stale_after=0)
    store.add_listener(events.append)
    before = store.last_success
    write_atomic(p, b'{"flags": {')
    assert store.is_active("f") is True
    assert store.stale and store.last_error is not None
    assert "flags.json" in str(store.last_error)
    p.unlink()
    assert store.is_active("f") is True and store.stale
    write_atomic(p, snapshot(False))
    assert store.is_active("f") is False
    assert not store.stale and store.last_success is not None and before is not None
    # unparseable: "error" at once; then missing: already reported in this streak
    assert [e.kind for e in events] == ["error", "ready", "changed"]


def test_missing_file_at_start_then_appears(tmp_path: Path) -> None:
    p = tmp_path / "flags.json"
    store = FileStore(p, check_interval=0)
    assert not store.ready and store.stale
    assert store.is_active("f") is False
    assert store.evaluate("f", "boolean", True).error_code is not None
    write_atomic(p, snapshot(True))
    assert store.is_active("f") is True and store.ready


def test_watcher_thread_reloads_without_reads(tmp_path: Path) -> None:
    p = tmp_path / "flags.json"
    p.write_bytes(snapshot(False))
    got = threading.Event()
    store = FileStore(p, check_on_read=False, watch=True, watch_interval=0.02)
    store.add_listener(lambda e: got.set() if e.kind == "changed" else None)
    try:
        write_atomic(p, snapshot(True))
        assert got.wait(5)
        assert store.flags.evaluate("f", "boolean", False).value is True
    finally:
        store.close()


def test_concurrent_readers_see_whole_snapshots(tmp_path: Path) -> None:
    p = tmp_path / "flags.json"
    p.write_bytes(snapshot(False))
    store = FileStore(p, check_interval=0)
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            fs = store.flags
            a = fs.evaluate("f", "boolean", None).value
            b = "g" in fs
            if a is not b:  # both change together in every snapshot written below
                errors.append(f"torn read {a} {b}")

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(100):
        write_atomic(p, snapshot(i % 2 == 0, extra="g" if i % 2 == 0 else None, gen=i))
    stop.set()
    for t in threads:
        t.join()
    assert errors == []


def test_watcher_restarts_in_forked_child(tmp_path: Path) -> None:
    p = tmp_path / "flags.json"
    p.write_bytes(snapshot(False))
    store = FileStore(p, check_on_read=False, watch=True, watch_interval=0.02)
    try:

        def child() -> bool:  # only a restarted watcher can see the change
            write_atomic(p, snapshot(True))
            return wait_for(lambda: store.flags.evaluate("f", "boolean", False).value, 5)

        assert_in_fork(child)
    finally:
        store.close()


def test_open_store_sources(tmp_path: Path) -> None:
    p = tmp_path / "flags.json"
    p.write_bytes(snapshot(True))
    assert isinstance(open_store(str(p)), FileStore)
    assert isinstance(open_store(p), FileStore)
    with pytest.raises(ValueError, match="unsupported"):
        open_store("ftp://x/y")


def test_open_store_redis_prefix_from_query(redis_server: object) -> None:
    url = redis_server.url
    s = open_store(url + "?prefix=myapp:flags", start=False)
    try:
        assert isinstance(s, RedisStore)
        assert s.snapshot_key == "{myapp:flags}:snapshot"
        assert s.stale  # nothing published yet
    finally:
        s.close()


def test_get_infers_types(tmp_path: Path) -> None:
    p = tmp_path / "flags.json"
    p.write_text(
        json.dumps(
            {
                "flags": {
                    "n": {"state": "ENABLED", "variants": {"a": 3}, "defaultVariant": "a"},
                    "o": {"state": "ENABLED", "variants": {"a": {"x": 1}}, "defaultVariant": "a"},
                }
            }
        )
    )
    store = FileStore(p)
    assert store.get("n") == 3
    assert store.get("n", 1.5) == 3.0
    assert store.get("o") == {"x": 1}
    assert store.get("missing", "d") == "d"
    time.sleep(0)


def test_stale_only_after_stale_after(tmp_path: Path) -> None:
    p = tmp_path / "flags.json"
    p.write_bytes(snapshot(True))
    events: list[ChangeEvent] = []
    store = FileStore(p, check_interval=0, stale_after=0.3)
    store.add_listener(events.append)
    p.unlink()  # a missing file is not an error of the snapshot: stale only after a while
    assert store.is_active("f") is True
    assert not store.stale and store.last_error is not None and events == []
    time.sleep(0.35)
    assert store.is_active("f") is True  # this read's check crosses the threshold
    assert store.stale and [e.kind for e in events] == ["stale"]
    write_atomic(p, snapshot(True))
    assert store.is_active("f") is True and not store.stale
    assert [e.kind for e in events] == ["stale", "ready"]
