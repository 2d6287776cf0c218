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
from redis_topology import RedisClusterTopology, RedisSentinelTopology

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


def publish_quickstart(
    go_cli: Path,
    workdir: Path,
    redis_url: str,
    prefix: str,
    env: dict[str, str] | None = None,
) -> Path:
    """Runs the real daemon once (`flagsync sync --once`) on the quickstart flags plus an
    env source (FLAGSYNC_FLAG_*), publishing to Redis under prefix and to a file; returns
    the file's path."""
    out = workdir / "flags.json"
    cfg = workdir / "flagsync.yaml"
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
    url: {redis_url}
    prefix: {prefix}
"""
    )
    r = subprocess.run(
        [str(go_cli), "sync", "--once", "--config", str(cfg)],
        cwd=workdir,
        env=dict(os.environ, **(env or {})),
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return out


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
