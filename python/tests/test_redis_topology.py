"""RedisStore on Redis Sentinel and Cluster (real topologies started by the test), the
prefix rule shared with the daemon and the Go provider, and the explained missing
snapshot (docs/FORMAT.md "Redis")."""

from __future__ import annotations

import logging
import time

import pytest
import redis
from conftest import RedisServer, wait_for
from redis.cluster import RedisCluster
from redis_topology import (
    RedisClusterTopology,
    RedisSentinelTopology,
    publish_counter,
    run_sentinel_failover,
)

from flagsync import NoSnapshotError, RedisStore, open_store
from flagsync._redis import (
    find_snapshots,
    key_base,
    keys_for,
    legacy_keys_for,
    prefix_of_snapshot_key,
)

publish = publish_counter


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
    before the kill, and the reader catches up once the replica is promoted (how fast is
    measured by python/bench/failover.py, not asserted)."""
    run = run_sentinel_failover(redis_sentinel)
    assert run.floor > 0, "nothing was replicated before the kill"
    assert run.reader_back == [], "reader generation went backwards"
    assert run.redis_back == [], f"Redis held less than the replicated generation {run.floor}"
    assert run.not_serving == 0, "reader stopped serving during the failover"
