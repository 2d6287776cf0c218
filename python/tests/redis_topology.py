"""Real Redis topologies on loopback for the tests and python/bench/failover.py: a
3-master cluster (redis-cli --cluster create) and a master/replica with 3 sentinels
(redis-server --sentinel), the counterpart of internal/testsvc/topology.go, and the
failover scenario both the test and the bench run."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from flagsync import open_store
from flagsync._redis import keys_for
from flagsync.canonical import encode_document
from flagsync.flagset import load

# The daemon's transport.Publish script (transport/transport.go) without fence or
# legacy names, so tests publish exactly as the writer does.
PUBLISH = """
local cur = tonumber(redis.call('GET', KEYS[3]) or '0')
local gen = tonumber(ARGV[3])
if gen <= cur then
  return cur
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[2])
return 0
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], object], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return bool(cond())


def publish_counter(r: Any, gen: int, prefix: str = "flagsync:prod") -> bool:
    """Publish a snapshot whose flag "counter" is gen, at generation gen."""
    flag = {"state": "ENABLED", "variants": {"v": gen}, "defaultVariant": "v"}
    data = encode_document(
        {"flags": {"counter": flag}, "metadata": {"flagSetId": "prod", "flagsync.generation": gen}}
    )
    k = keys_for(prefix)
    rev = load(data)[0].revision
    return bool(
        r.eval(PUBLISH, 3, k.snapshot, k.revision, k.generation, data, rev, gen, k.channel) == 0
    )


def _redis_cli(*args: str, timeout: float = 5.0) -> str:
    exe = shutil.which("redis-cli")
    assert exe is not None, "redis-cli is not installed (scripts/ensure-redis.sh)"
    out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, check=False)
    return out.stdout + out.stderr


def _wait_cli(what: str, ok: Callable[[], bool], timeout: float = 30.0) -> None:
    if not wait_for(ok, timeout):
        raise RuntimeError(f"waiting for {what}: not after {timeout}s")


class RedisNode:
    """A redis-server with extra arguments (cluster mode, replicaof, sentinel) that a test
    can SIGKILL, each start in its own empty directory (a replica writes dump.rdb there)."""

    def __init__(self, workdir: Path, *args: str, conf: Path | None = None) -> None:
        exe = shutil.which("redis-server")
        assert exe is not None, "redis-server is not installed (scripts/ensure-redis.sh)"
        self.exe = exe
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.args = list(args)
        self.conf = conf
        self.starts = 0

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        d = self.workdir / f"run-{self.port}-{self.starts}"
        d.mkdir(parents=True)
        cmd = [self.exe] + ([str(self.conf)] if self.conf else [])
        cmd += ["--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        cmd += ["--dir", str(d), *self.args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = str(self.port)
        _wait_cli(f"redis on {port}", lambda: "PONG" in _redis_cli("-p", port, "ping"), 10)

    def kill(self) -> None:
        """SIGKILL: a crash, no shutdown save."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is a valid, free port too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class RedisClusterTopology:
    """Three cluster-mode masters joined with redis-cli --cluster create."""

    def __init__(self, workdir: Path, masters: int = 3) -> None:
        self.nodes = [
            RedisNode(
                workdir,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(workdir / f"nodes-{i}.conf"),
                "--cluster-node-timeout",
                "2000",
            )
            for i in range(masters)
        ]
        for n in self.nodes:
            n.port = _cluster_port()

    def start(self) -> None:
        for n in self.nodes:
            n.start()
        out = _redis_cli(
            "--cluster",
            "create",
            *[n.addr for n in self.nodes],
            "--cluster-replicas",
            "0",
            "--cluster-yes",
            timeout=30,
        )
        assert "All 16384 slots covered" in out, out
        for n in self.nodes:
            _wait_cli(
                f"cluster_state:ok on {n.addr}",
                lambda n=n: "cluster_state:ok" in _redis_cli("-p", str(n.port), "cluster", "info"),
            )

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(n.addr for n in self.nodes)

    def stop(self) -> None:
        for n in self.nodes:
            n.kill()


class RedisSentinelTopology:
    """A master, one replica and three sentinels (quorum 2, down after 1 s)."""

    master_name = "flagsync-test"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        # no 5 s wait before the first full sync (the default diskless-sync delay)
        fast = ("--repl-diskless-sync-delay", "0")
        self.data = [RedisNode(workdir, *fast)]
        self.data.append(
            RedisNode(workdir, "--replicaof", "127.0.0.1", str(self.data[0].port), *fast)
        )
        self.sentinels: list[RedisNode] = []
        for i in range(3):
            conf = workdir / f"sentinel-{i}.conf"
            m = self.master_name
            conf.write_text(
                f"sentinel monitor {m} 127.0.0.1 {self.data[0].port} 2\n"
                f"sentinel down-after-milliseconds {m} 1000\n"
                f"sentinel failover-timeout {m} 5000\n"
            )
            self.sentinels.append(RedisNode(workdir, "--sentinel", conf=conf))

    def start(self) -> None:
        for n in self.data + self.sentinels:
            n.start()
        rp = str(self.data[1].port)
        _wait_cli(
            "the replica to sync",
            lambda: "master_link_status:up" in _redis_cli("-p", rp, "info", "replication"),
        )
        for s in self.sentinels:

            def ready(s: RedisNode = s) -> bool:
                lines = _redis_cli("-p", str(s.port), "sentinel", "master", self.master_name)
                f = lines.split()
                d = dict(zip(f[::2], f[1::2], strict=False))
                return d.get("num-slaves") == "1" and d.get("num-other-sentinels") == "2"

            _wait_cli(f"sentinel {s.addr} ready", ready)

    @property
    def url(self) -> str:
        return (
            "redis+sentinel://" + ",".join(s.addr for s in self.sentinels) + f"/{self.master_name}"
        )

    def master_addr(self) -> str:
        for s in self.sentinels:
            f = _redis_cli(
                "-p", str(s.port), "sentinel", "get-master-addr-by-name", self.master_name
            ).split()
            if len(f) == 2:
                return f"{f[0]}:{f[1]}"
        raise RuntimeError("no sentinel names a master")

    def master(self) -> RedisNode:
        addr = self.master_addr()
        return next(n for n in self.data if n.addr == addr)

    def wait_failover(self, old: RedisNode, timeout: float = 30.0) -> RedisNode:
        def done() -> bool:
            addrs = set()
            for s in self.sentinels:
                f = _redis_cli(
                    "-p", str(s.port), "sentinel", "get-master-addr-by-name", self.master_name
                ).split()
                addrs.add(f"{f[0]}:{f[1]}" if len(f) == 2 else "")
            if len(addrs) != 1 or old.addr in addrs or "" in addrs:
                return False
            new = next(n for n in self.data if n.addr in addrs)
            return _redis_cli("-p", str(new.port), "role").startswith("master")

        _wait_cli("the sentinels to promote the replica", done, timeout)
        return self.master()

    def restart_as_replica(self, node: RedisNode) -> None:
        """Start a killed former master again as a replica of the current master and wait
        until the sentinels count it, so another failover can follow."""
        m = self.master()
        node.args = ["--replicaof", "127.0.0.1", str(m.port), "--repl-diskless-sync-delay", "0"]
        node.start()
        port = str(node.port)
        _wait_cli(
            "the restarted server to sync",
            lambda: "master_link_status:up" in _redis_cli("-p", port, "info", "replication"),
        )
        for s in self.sentinels:
            sp = str(s.port)

            def counted(sp: str = sp) -> bool:
                out = _redis_cli("-p", sp, "sentinel", "replicas", self.master_name)
                return port in out and "s_down" not in out

            _wait_cli(f"sentinel {s.addr} to count the replica", counted)

    def stop(self) -> None:
        for n in self.sentinels + self.data:
            n.kill()


@dataclass
class FailoverRun:
    """What one failover with a reader attached showed."""

    catch_up: float = 0.0  # failover complete -> reader serves a generation published after
    reader_back: list[tuple[int, int]] = field(default_factory=list)
    redis_back: list[int] = field(default_factory=list)
    not_serving: int = 0
    floor: int = 0


def run_sentinel_failover(top: RedisSentinelTopology) -> FailoverRun:
    """Publish a generation every 10 ms through Sentinel while a RedisStore reads it,
    SIGKILL the master, wait for the promotion and for the reader to serve a generation
    published after it. Records (does not assert) any going back and any gap in serving."""
    from redis.sentinel import Sentinel

    sentinels = [("127.0.0.1", s.port) for s in top.sentinels]

    def master() -> Any:
        return Sentinel(sentinels, socket_timeout=0.3).master_for(  # type: ignore[no-untyped-call]
            top.master_name, socket_timeout=0.3
        )

    pub, watch = master(), master()
    k = keys_for("flagsync:prod")
    state: dict[str, Any] = {"gen": int(watch.get(k.generation) or 0), "replicated": 0}
    state.update(first_after=0, failover_done=0.0)
    lock = threading.Lock()
    run = FailoverRun()

    def publish_one() -> None:
        state["gen"] += 1
        g = state["gen"]
        try:
            ok = publish_counter(pub, g)
            if ok and pub.execute_command("WAIT", 1, 200) >= 1:
                state["replicated"] = g
        except redis.RedisError:
            return
        with lock:
            if ok and state["failover_done"] and not state["first_after"]:
                state["first_after"] = g

    publish_one()
    store = open_store(top.url + "?flagSetId=prod", socket_timeout=0.3)
    stop = threading.Event()

    def publisher() -> None:
        while not stop.wait(0.01):
            publish_one()

    def observer() -> None:
        last = 0
        i = 0
        while not stop.wait(0.002):
            i += 1
            g = store.flags.generation
            if not store.ready or store.get("counter", -1) < 1:
                run.not_serving += 1
            elif g < last:
                run.reader_back.append((last, g))
            last = max(last, g)
            if i % 5 == 0 and run.floor:
                try:
                    held = int(watch.get(k.generation) or 0)
                except redis.RedisError:
                    continue
                if held < run.floor:
                    run.redis_back.append(held)

    threads = [threading.Thread(target=publisher), threading.Thread(target=observer)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        run.floor = state["replicated"]
        old = top.master()
        old.kill()
        top.wait_failover(old)
        with lock:
            state["failover_done"] = time.monotonic()

        def caught_up() -> bool:
            with lock:
                target = state["first_after"]
            return bool(target) and store.flags.generation >= target

        if not wait_for(caught_up, 60):
            raise AssertionError(
                f"reader at {store.flags.generation} did not catch up within 60 s "
                f"(first publish after the failover: {state['first_after']})"
            )
        run.catch_up = time.monotonic() - state["failover_done"]
    finally:
        stop.set()
        for t in threads:
            t.join()
        store.close()
        pub.close()
        watch.close()
    top.restart_as_replica(old)
    return run
