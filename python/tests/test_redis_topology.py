"""RedisStore on Redis Sentinel and Cluster (real topologies started by the test), the
prefix rule shared with the daemon and the Go provider, and the explained missing
snapshot (docs/FORMAT.md "Redis")."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
import redis
from conftest import RedisClusterTopology, RedisSentinelTopology, RedisServer, wait_for
from redis.cluster import RedisCluster
from test_redis_store import PUBLISH

from flagsync import NoSnapshotError, RedisStore, open_store
from flagsync._redis import (
    find_snapshots,
    key_base,
    keys_for,
    legacy_keys_for,
    prefix_of_snapshot_key,
)
from flagsync.canonical import encode_document
from flagsync.flagset import load


def publish(r: Any, gen: int, prefix: str = "flagsync:prod") -> bool:
    data = encode_document(
        {
            "flags": {
                "counter": {"state": "ENABLED", "variants": {"v": gen}, "defaultVariant": "v"}
            },
            "metadata": {"flagSetId": "prod", "flagsync.generation": gen},
        }
    )
    k = keys_for(prefix)
    return (
        r.eval(
            PUBLISH,
            3,
            k.snapshot,
            k.revision,
            k.generation,
            data,
            load(data)[0].revision,
            gen,
            k.channel,
        )
        == 0
    )


# The same cases as transport/keys_test.go: one rule in Go and Python.
@pytest.mark.parametrize(
    ("prefix", "base"),
    [
        ("flagsync:prod", "{flagsync:prod}"),
        ("{flagsync:prod}", "{flagsync:prod}"),
        ("app:{flags}:prod", "app:{flags}:prod"),
        ("a{}b", "{a{}b}"),
    ],
)
def test_key_base(prefix: str, base: str) -> None:
    assert key_base(prefix) == base
    assert keys_for(prefix).snapshot == base + ":snapshot"


@pytest.mark.parametrize(
    ("key", "want"),
    [
        ("{flagsync:prod}:snapshot", ("flagsync:prod", False)),
        ("flagsync:prod:snapshot", ("flagsync:prod", True)),
        ("app:{x}:y:snapshot", ("app:{x}:y", False)),
        ("flagsync:prod:revision", None),
        (":snapshot", None),
        ("{a{b}:snapshot", ("{a{b}", False)),
    ],
)
def test_prefix_of_snapshot_key(key: str, want: tuple[str, bool] | None) -> None:
    assert prefix_of_snapshot_key(key) == want


def test_default_prefix_rule(redis_server: RedisServer) -> None:
    for url, kw, prefix in [
        (redis_server.url, {}, "flagsync:default"),
        (redis_server.url + "?flagSetId=prod", {}, "flagsync:prod"),
        (redis_server.url, {"flag_set_id": "prod"}, "flagsync:prod"),
        (redis_server.url + "?prefix=my:flags&flagSetId=prod", {}, "my:flags"),
    ]:
        s = open_store(url, start=False, **kw)
        try:
            assert isinstance(s, RedisStore)
            assert (s.prefix, s.snapshot_key) == (prefix, "{" + prefix + "}:snapshot")
        finally:
            s.close()


def test_missing_snapshot_lists_prefixes(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The Flask docstring's own source, next to a daemon whose flag set is "prod": every
    flag was FLAG_NOT_FOUND with one stderr line. Now: a WARNING naming what is there."""
    r = redis.Redis.from_url(redis_server.url)
    publish(r, 1)
    r.set(legacy_keys_for("flagsync:old").snapshot, "{}")
    caplog.set_level(logging.WARNING, logger="flagsync")
    store = RedisStore(redis_server.url, poll_interval=0.05)
    try:
        err = store.last_error
        assert isinstance(err, NoSnapshotError) and isinstance(err, LookupError)
        assert [str(f) for f in err.present] == [
            "flagsync:old (old key names, flagsync:old:snapshot)",
            "flagsync:prod",
        ]
        msg = str(err)
        assert (
            'no snapshot under prefix "flagsync:default" (key {flagsync:default}:snapshot)' in msg
        )
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert any("snapshots present under: " in w.getMessage() for w in warnings)
        time.sleep(0.3)  # several polls: the listing is made once per failure streak
        assert store.last_error is err
        assert sum("snapshots present under" in w.getMessage() for w in caplog.records) == 1
        publish(r, 2, "flagsync:default")
        assert wait_for(lambda: store.ready and store.last_error is None)
    finally:
        store.close()


def test_find_snapshots_is_bounded(redis_server: RedisServer) -> None:
    r = redis.Redis.from_url(redis_server.url)
    with r.pipeline() as p:
        for i in range(5000):
            p.set(f"{{flagsync:s{i:04d}}}:snapshot", "{}")
            p.set(f"other:{i}", "x")
        p.execute()
    found, complete = find_snapshots(r, count=100, max_keys=20)
    assert len(found) == 20 and not complete
    found, complete = find_snapshots(r, timeout=0)
    assert found == [] and not complete


def test_cluster_reader(redis_cluster: RedisClusterTopology) -> None:
    nodes = redis_cluster.nodes
    rc = RedisCluster(host="127.0.0.1", port=nodes[0].port)
    try:
        for prefix in ("flagsync:prod", "flagsync:b", "flagsync:c"):
            assert publish(rc, 1, prefix)
        store = open_store(redis_cluster.url + "?flagSetId=prod", poll_interval=60)
        try:
            assert store.get("counter", 0) == 1
            publish(rc, 2)
            assert wait_for(lambda: store.get("counter", 0) == 2), "Pub/Sub on a cluster"
        finally:
            store.close()
        # A reader at another prefix lists the snapshots of every master.
        other = open_store(redis_cluster.url + "?flagSetId=nope", start=False)
        try:
            err = other.last_error
            assert isinstance(err, NoSnapshotError) and err.complete
            assert sorted(f.prefix for f in err.present) == [
                "flagsync:b",
                "flagsync:c",
                "flagsync:prod",
            ]
        finally:
            other.close()
    finally:
        rc.close()


def test_url_errors_do_not_leak_passwords() -> None:
    for url, want in [
        ("redis+sentinel://:s3cret@h1:26379", "the path must be /<master name>"),
        ("redis+sentinel://:s3cret@h1/m", "address 0 must be host:port"),
        ("redis+cluster://:s3cret@h1:7000/3", "only database 0"),
        ("redis+cluster://:s3cret@h1:7000?bogus=1", "unknown query parameters"),
        ("ftp://:s3cret@h1/x", "unsupported flag source"),
    ]:
        with pytest.raises(ValueError, match=want) as e:
            open_store(url, start=False)
        assert "s3cret" not in str(e.value)


def test_sentinel_failover(redis_sentinel: RedisSentinelTopology) -> None:
    """Publish continuously, SIGKILL the master: the reader's generation never goes back,
    it serves its last snapshot throughout, Redis never holds less than what was replicated
    before the kill, and the reader catches up once the replica is promoted."""
    from redis.sentinel import Sentinel

    sentinels = [("127.0.0.1", s.port) for s in redis_sentinel.sentinels]
    pub = Sentinel(sentinels, socket_timeout=0.3).master_for(
        redis_sentinel.master_name, socket_timeout=0.3
    )
    watch = Sentinel(sentinels, socket_timeout=0.3).master_for(
        redis_sentinel.master_name, socket_timeout=0.3
    )
    gen = 0
    replicated = 0
    lock = threading.Lock()
    first_after = 0
    failover_done = 0.0

    def publish_one() -> None:
        nonlocal gen, replicated, first_after
        gen += 1
        try:
            ok = publish(pub, gen)
            if ok and pub.execute_command("WAIT", 1, 200) >= 1:
                replicated = gen
        except redis.RedisError:
            return
        with lock:
            if ok and failover_done and not first_after:
                first_after = gen

    publish_one()
    store = open_store(redis_sentinel.url + "?flagSetId=prod", socket_timeout=0.3)
    stop = threading.Event()
    back: list[tuple[int, int]] = []
    redis_back: list[int] = []
    not_serving = 0
    floor = 0

    def publisher() -> None:
        while not stop.wait(0.01):
            publish_one()

    def observer() -> None:
        nonlocal not_serving
        last = 0
        i = 0
        while not stop.wait(0.002):
            i += 1
            g = store.flags.generation
            if not store.ready or store.get("counter", -1) < 1:
                not_serving += 1
            elif g < last:
                back.append((last, g))
            last = max(last, g)
            if i % 5 == 0 and floor:
                try:
                    held = int(watch.get(keys_for("flagsync:prod").generation) or 0)
                except redis.RedisError:
                    continue
                if held < floor:
                    redis_back.append(held)

    threads = [threading.Thread(target=publisher), threading.Thread(target=observer)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        floor = replicated
        old = redis_sentinel.master()
        old.kill()
        redis_sentinel.wait_failover(old)
        with lock:
            failover_done = time.monotonic()
        assert wait_for(lambda: first_after and store.flags.generation >= first_after, 60), (
            f"reader at {store.flags.generation}, first publish after failover {first_after}"
        )
        caught_up = time.monotonic() - failover_done
    finally:
        stop.set()
        for t in threads:
            t.join()
        store.close()
        pub.close()
        watch.close()
    assert back == [], "reader generation went backwards"
    assert redis_back == [], f"Redis held less than the replicated generation {floor}"
    assert not_serving == 0, "reader stopped serving during the failover"
    print(f"python reader caught up {caught_up:.3f}s after the failover completed")
