"""Shared fixtures: the repository paths, the Go CLI built once per session and a real
redis-server on a free 127.0.0.1 port (a missing redis-server is a failure, not a skip)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFORMANCE = REPO / "conformance"

# Django can be configured once per process: the integration tests share these settings
# (sqlite in memory for auth) and point FLAGSYNC at their own files with override_settings.
DJANGO_FLAGS = Path(tempfile.mkdtemp(prefix="flagsync-django-")) / "flags.json"


def _configure_django() -> None:
    import django
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="test",
        ALLOWED_HOSTS=["testserver"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "flagsync.django",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        ROOT_URLCONF="django_urls",
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [],
                "APP_DIRS": True,
                "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
            }
        ],
        USE_TZ=True,
        LANGUAGE_CODE="en-us",
        FLAGSYNC={"SOURCE": f"file://{DJANGO_FLAGS}", "OPTIONS": {"check_interval": 0}},
    )
    django.setup()


_configure_django()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def go_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go flagsync binary, built from this tree."""
    go = shutil.which("go")
    assert go is not None, "the go toolchain is needed to build the Go CLI"
    out = tmp_path_factory.mktemp("gobin") / "flagsync"
    subprocess.run([go, "build", "-o", str(out), "./cmd/flagsync"], cwd=REPO, check=True)
    return out


class RedisServer:
    """A redis-server child process that tests can stop and start again on the same port."""

    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("redis-server")
        assert exe is not None, "redis-server is not installed (scripts/ensure-redis.sh)"
        self.exe = exe
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.exe,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    srv = RedisServer(tmp_path)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def write_atomic(path: Path, data: bytes) -> None:
    """Replace path like the daemon does (temp file + rename)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def wait_for(cond: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(cond) and cond():
            return True
        time.sleep(0.02)
    return bool(callable(cond) and cond())


def assert_in_fork(child: Callable[[], bool]) -> None:
    """Run child in a forked process and assert it returned True (an exception or
    False there fails the test here)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if child():
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _redis_cli(*args: str, timeout: float = 5.0) -> str:
    exe = shutil.which("redis-cli")
    assert exe is not None, "redis-cli is not installed (scripts/ensure-redis.sh)"
    out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, check=False)
    return out.stdout + out.stderr


def _wait_cli(what: str, ok: Callable[[], bool], timeout: float = 30.0) -> None:
    if not wait_for(ok, timeout):
        raise RuntimeError(f"waiting for {what}: not after {timeout}s")


class RedisNode(RedisServer):
    """A redis-server with extra arguments (cluster mode, replicaof, sentinel) that a test
    can SIGKILL, each start in its own empty directory (a replica writes dump.rdb there)."""

    def __init__(self, workdir: Path, *args: str, conf: Path | None = None) -> None:
        super().__init__(workdir)
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
        self.data = [RedisNode(workdir)]
        self.data.append(RedisNode(workdir, "--replicaof", "127.0.0.1", str(self.data[0].port)))
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

    def stop(self) -> None:
        for n in self.sentinels + self.data:
            n.kill()


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisClusterTopology]:
    c = RedisClusterTopology(tmp_path)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture
def redis_sentinel(tmp_path: Path) -> Iterator[RedisSentinelTopology]:
    s = RedisSentinelTopology(tmp_path)
    try:
        s.start()
        yield s
    finally:
        s.stop()
