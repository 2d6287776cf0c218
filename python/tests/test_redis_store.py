"""RedisStore against a real redis-server: initial read, Pub/Sub, poll fallback, never going
back in generation, outage (stale, last good kept) and recovery after a restart."""

from __future__ import annotations

import threading

import redis
from conftest import RedisServer, assert_in_fork, wait_for
from redis_topology import PUBLISH

from flagsync import ChangeEvent, RedisStore
from flagsync._redis import keys_for
from flagsync.canonical import encode_document
from flagsync.flagset import load

PREFIX = "flagsync:test"


def publish(r: redis.Redis, value: str, gen: int, prefix: str = PREFIX) -> str:
    data = encode_document(
        {
            "flags": {
                "color": {"state": "ENABLED", "variants": {"v": value}, "defaultVariant": "v"}
            },
            "metadata": {"flagSetId": "test", "flagsync.generation": gen},
        }
    )
    rev = load(data)[0].revision
    k = keys_for(prefix)
    r.eval(PUBLISH, 3, k.snapshot, k.revision, k.generation, data, rev, gen, k.channel)
    return rev


def test_pubsub_update(redis_server: RedisServer) -> None:
    r = redis.Redis.from_url(redis_server.url)
    publish(r, "red", 1)
    store = RedisStore(redis_server.url, PREFIX, poll_interval=60)
    got = threading.Event()
    events: list[ChangeEvent] = []

    def on(e: ChangeEvent) -> None:
        events.append(e)
        got.set()

    store.add_listener(on)
    try:
        assert store.get("color", "") == "red" and not store.stale
        assert wait_for(lambda: store._thread is not None and store._thread.is_alive())
        # the subscription may still be starting: publish until it is seen
        assert wait_for(lambda: publish(r, "blue", 2) and got.wait(0.2), 10)
        assert store.get("color", "") == "blue"
        assert events[0].kind == "changed" and events[0].flags_changed == ("color",)
    finally:
        store.close()


def test_poll_fallback_without_pubsub(redis_server: RedisServer) -> None:
    r = redis.Redis.from_url(redis_server.url)
    publish(r, "red", 1)
    store = RedisStore(redis_server.url + f"?prefix={PREFIX}", subscribe=False, poll_interval=0.05)
    try:
        publish(r, "green", 2)
        assert wait_for(lambda: store.get("color", "") == "green", 10)
    finally:
        store.close()


def test_never_goes_back_in_generation(redis_server: RedisServer) -> None:
    r = redis.Redis.from_url(redis_server.url)
    publish(r, "new", 5)
    store = RedisStore(redis_server.url, PREFIX, start=False)
    try:
        # a stray writer bypassing the script puts an older snapshot in place
        data = encode_document(
            {
                "flags": {
                    "color": {"state": "ENABLED", "variants": {"v": "old"}, "defaultVariant": "v"}
                },
                "metadata": {"flagsync.generation": 3},
            }
        )
        r.set(keys_for(PREFIX).snapshot, data)
        r.set(keys_for(PREFIX).revision, "x")
        store.refresh()
        assert store.get("color", "") == "new"
    finally:
        store.close()


def test_outage_keeps_last_good_and_recovers(redis_server: RedisServer) -> None:
    r = redis.Redis.from_url(redis_server.url)
    publish(r, "red", 1)
    kinds: list[str] = []
    store = RedisStore(
        redis_server.url,
        PREFIX,
        poll_interval=0.05,
        backoff_max=0.2,
        socket_timeout=0.5,
        stale_after=0.1,
    )
    store.add_listener(lambda e: kinds.append(e.kind))
    try:
        redis_server.stop()
        assert wait_for(lambda: "stale" in kinds, 10)
        assert store.stale
        assert store.get("color", "") == "red"  # last good snapshot still served
        assert store.last_error is not None
        redis_server.start()  # empty: a restarted Redis without persistence
        r = redis.Redis.from_url(redis_server.url)
        publish(r, "after", 2)
        assert wait_for(lambda: store.get("color", "") == "after", 15)
        assert not store.stale
        assert "stale" in kinds and "ready" in kinds and "changed" in kinds
    finally:
        store.close()


def test_no_snapshot_yet_then_published(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, PREFIX, poll_interval=0.05)
    try:
        assert not store.ready and store.stale
        assert store.get("color", "dflt") == "dflt"
        publish(redis.Redis.from_url(redis_server.url), "late", 1)
        assert store.wait_ready(10)
        assert store.get("color", "") == "late"
    finally:
        store.close()


def test_listener_restarts_in_forked_child(redis_server: RedisServer) -> None:
    r = redis.Redis.from_url(redis_server.url)
    publish(r, "parent", 1)
    store = RedisStore(redis_server.url, PREFIX, poll_interval=0.05)
    try:

        def child() -> bool:  # only a restarted listener thread can see the new publish
            publish(redis.Redis.from_url(redis_server.url), "child", 2)
            return wait_for(lambda: store.get("color", "") == "child", 10)

        assert_in_fork(child)
    finally:
        store.close()
