"""The real daemon output the Django tests read: `flagsync sync --once` publishes a flag
file through the Go CLI to a snapshot file and to a real redis-server (stopped by the fixture)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import RedisServer

PREFIX = "flagsync:djangoapp"

FLAGS: dict[str, Any] = {
    "new_dashboard": {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "targeting": {"if": [{"var": "is_staff"}, "on", "off"]},
    },
    "beta_mode": {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]},
    },
    "color": {"state": "ENABLED", "variants": {"b": "blue"}, "defaultVariant": "b"},
    "by_group": {
        "state": "ENABLED",
        "variants": {"yes": "in-beta", "no": "not"},
        "defaultVariant": "no",
        "targeting": {"if": [{"in": ["beta", {"var": "groups"}]}, "yes", "no"]},
    },
}


@dataclass(frozen=True)
class DaemonOutput:
    file: Path
    redis: RedisServer
    prefix: str

    @property
    def file_source(self) -> str:
        return f"file://{self.file}"

    @property
    def redis_source(self) -> str:
        return f"{self.redis.url}?prefix={self.prefix}"


def publish(go_cli: Path, workdir: Path, redis: RedisServer, out: Path) -> None:
    """Run the daemon once over FLAGS: the snapshot goes to out and to Redis under PREFIX."""
    src = workdir / "flags.json"
    src.write_text(json.dumps({"flags": FLAGS}))
    cfg = workdir / "flagsync.yaml"
    cfg.write_text(
        f"""flagSetId: djangoapp
sources:
  - name: app-flags
    type: file
    path: {src}
outputs:
  file:
    path: {out}
  redis:
    url: {redis.url}
    prefix: {PREFIX}
"""
    )
    r = subprocess.run(
        [str(go_cli), "sync", "--once", "--config", str(cfg)],
        cwd=workdir,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def daemon_output(go_cli: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonOutput]:
    workdir = tmp_path_factory.mktemp("django-daemon")
    redis = RedisServer(workdir)
    redis.start()
    try:
        out = workdir / "out" / "flags.json"
        out.parent.mkdir()
        publish(go_cli, workdir, redis, out)
        yield DaemonOutput(out, redis, PREFIX)
    finally:
        redis.stop()
