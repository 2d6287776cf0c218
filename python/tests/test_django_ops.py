"""The operator side of flagsync.django against the daemon's real file and Redis output:
the system check (django.core.checks.run_checks, manage.py check) and the management
command (call_command and a real `python -m django` process for the exit codes)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RedisServer, free_port
from django.contrib.auth.models import Group, User
from django.core.checks import CheckMessage, run_checks
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from django_daemon import PREFIX, DaemonOutput, daemon_output  # noqa: F401 - a fixture

from flagsync import FileStore, RedisStore
from flagsync.django import get_store, override_flag, reset
from flagsync.django.sources import redact, scrub


@pytest.fixture(scope="module", autouse=True)
def db() -> None:
    call_command("migrate", verbosity=0, run_syncdb=True)


@pytest.fixture(autouse=True)
def fresh_store() -> Iterator[None]:
    reset()
    yield
    reset()


def checks_with(**flagsync: Any) -> list[CheckMessage]:
    with override_settings(FLAGSYNC=flagsync):
        return list(run_checks(tags=["flagsync"]))


def ids(messages: list[CheckMessage]) -> list[str]:
    return [str(m.id) for m in messages]


def text(messages: list[CheckMessage]) -> str:
    return "\n".join(f"{m.msg} {m.hint or ''}" for m in messages)


# system check ------------------------------------------------------------------------


def test_check_passes_on_the_daemon_output(daemon_output: DaemonOutput) -> None:  # noqa: F811
    assert checks_with(SOURCE=daemon_output.file_source) == []
    assert checks_with(SOURCE=str(daemon_output.file)) == []
    assert checks_with(SOURCE=daemon_output.redis_source) == []
    assert checks_with(SOURCE=daemon_output.redis.url, OPTIONS={"prefix": PREFIX}) == []


def test_check_wrong_redis_prefix_names_the_published_one(daemon_output: DaemonOutput) -> None:  # noqa: F811
    msgs = checks_with(SOURCE=f"{daemon_output.redis.url}?prefix=flagsync:typo")
    assert ids(msgs) == ["flagsync.E006"]
    assert "flagsync:typo" in msgs[0].msg and 'FLAGSYNC["SOURCE"]' in msgs[0].msg
    assert PREFIX in str(msgs[0].hint)
    no_prefix = checks_with(SOURCE=daemon_output.redis.url)
    assert ids(no_prefix) == ["flagsync.E006"]
    assert "flagsync:default" in no_prefix[0].msg and PREFIX in str(no_prefix[0].hint)
    assert "names no prefix" in str(no_prefix[0].hint)


def test_check_runs_at_manage_py_check(daemon_output: DaemonOutput) -> None:  # noqa: F811
    with override_settings(FLAGSYNC={"SOURCE": f"{daemon_output.redis.url}?prefix=x:y"}):
        assert "flagsync.E006" in ids(list(run_checks()))  # registered without a tag too
        with pytest.raises(SystemCheckError, match=r"flagsync\.E006"):
            call_command("check")


def test_check_unreadable_and_unparseable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "flags.json"
    msgs = checks_with(SOURCE=f"file://{missing}")
    assert ids(msgs) == ["flagsync.E005"] and str(missing) in msgs[0].msg
    bad = tmp_path / "flags.json"
    bad.write_text('{"flags": ')
    assert ids(checks_with(SOURCE=str(bad))) == ["flagsync.E007"]
    locked = tmp_path / "locked.json"
    locked.write_text("{}")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):  # root reads anything: then it is just readable
            assert checks_with(SOURCE=str(locked)) == []
        else:
            assert ids(checks_with(SOURCE=str(locked))) == ["flagsync.E005"]
    finally:
        locked.chmod(0o600)


def test_check_bad_settings(daemon_output: DaemonOutput) -> None:  # noqa: F811
    good = daemon_output.file_source
    with override_settings(FLAGSYNC=None):
        assert ids(list(run_checks(tags=["flagsync"]))) == ["flagsync.E001"]
    assert ids(checks_with(OPTIONS={})) == ["flagsync.E001"]
    assert ids(checks_with(SOURCE=good, OPTIONS=["watch"])) == ["flagsync.E002"]
    msgs = checks_with(SOURCE=good, OPTIONS={"polll_interval": 1})
    assert ids(msgs) == ["flagsync.E002"] and "polll_interval" in msgs[0].msg
    msgs = checks_with(SOURCE=good, CONTEXT_BUILDER="no_such_module.context")
    assert ids(msgs) == ["flagsync.E003"] and "no_such_module.context" in msgs[0].msg
    assert ids(checks_with(SOURCE=good, CONTEXT_BUILDER="flagsync.store.DEFAULT_PREFIX")) == [
        "flagsync.E003"
    ]
    msgs = checks_with(SOURCE="ftp://flags.example/flags.json")
    assert ids(msgs) == ["flagsync.E004"] and "ftp://flags.example/flags.json" in msgs[0].msg


def test_check_unreachable_redis_is_a_warning_without_the_password(tmp_path: Path) -> None:
    down = f"redis://app:s3cret-pw@127.0.0.1:{free_port()}/0?prefix=flagsync:app"
    msgs = checks_with(SOURCE=down, OPTIONS={"socket_timeout": 2})
    assert ids(msgs) == ["flagsync.W001"]
    assert "s3cret-pw" not in text(msgs) and "app:***@127.0.0.1" in msgs[0].msg


def test_check_never_shows_a_password(tmp_path: Path) -> None:
    srv = RedisServer(tmp_path)  # a server that wants a password the URL gets wrong
    srv.start()
    try:
        subprocess.run(
            ["redis-cli", "-p", str(srv.port), "CONFIG", "SET", "requirepass", "right-pw"],
            check=True,
            capture_output=True,
        )
        for url in (
            f"redis://:wrong-pw@127.0.0.1:{srv.port}/0?prefix=p",
            f"redis://127.0.0.1:{srv.port}/0?prefix=p&password=wrong-pw",
        ):
            msgs = checks_with(SOURCE=url)
            assert ids(msgs) == ["flagsync.W001"]
            assert "wrong-pw" not in text(msgs) and "***" in msgs[0].msg
        msgs = checks_with(SOURCE=f"redis://:right-pw@127.0.0.1:{srv.port}/0?prefix=p")
        assert ids(msgs) == ["flagsync.E006"] and "right-pw" not in text(msgs)
    finally:
        srv.stop()


def test_scrub_masks_both_forms_of_an_escaped_password() -> None:
    src = "redis://:p%40ss-word@h:1/0"
    assert scrub("auth p%40ss-word / p@ss-word failed", src) == "auth *** / *** failed"
    assert scrub(f"could not open {src}", src) == "could not open redis://:***@h:1/0"


def test_redact() -> None:
    assert redact("redis://u:pw@h:1/0?prefix=a") == "redis://u:***@h:1/0?prefix=a"
    assert redact("rediss://:pw@h/0") == "rediss://:***@h/0"
    assert redact("redis://h/0?password=pw&prefix=a:b") == "redis://h/0?password=***&prefix=a:b"
    assert redact("/srv/flags.json") == "/srv/flags.json"
    assert redact("redis://h:6379/0?prefix=a") == "redis://h:6379/0?prefix=a"


# management command ------------------------------------------------------------------


def command(*args: str, **flagsync: Any) -> str:
    out = io.StringIO()
    with override_settings(FLAGSYNC=flagsync):
        call_command("flagsync", *args, stdout=out)
    return out.getvalue()


def test_status_of_file_and_redis(daemon_output: DaemonOutput) -> None:  # noqa: F811
    with FileStore(daemon_output.file) as published:
        revision = published.revision
        keys = sorted(published.flags.keys())
    for source in (daemon_output.file_source, daemon_output.redis_source):
        out = command("status", SOURCE=source)
        assert f"revision:   {revision}" in out
        assert "flag set:   djangoapp" in out and "flags:      4" in out
        assert all(f"\n  {k}" in out for k in keys)
        assert "age:" in out and "generated:" in out
    assert f"prefix:     {PREFIX}" in command("status", SOURCE=daemon_output.redis_source)
    info = json.loads(command("status", "--json", SOURCE=daemon_output.redis_source))
    assert info["revision"] == revision and info["flags"] == keys and info["prefix"] == PREFIX
    assert info["ageSeconds"] >= 0
    assert "revision:" in command("status", "--max-age", "3600", SOURCE=daemon_output.file_source)
    with pytest.raises(CommandError, match="stale"):
        command("status", "--max-age", "0", SOURCE=daemon_output.file_source)


def test_status_fails_without_a_snapshot(daemon_output: DaemonOutput, tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(CommandError, match="no snapshot.*flagsync:typo"):
        command("status", SOURCE=f"{daemon_output.redis.url}?prefix=flagsync:typo")
    with pytest.raises(CommandError, match="no snapshot.*missing.json"):
        command("status", SOURCE=str(tmp_path / "missing.json"))
    with pytest.raises(CommandError, match="FLAGSYNC"):
        command("status")


def test_eval_for_a_user(daemon_output: DaemonOutput) -> None:  # noqa: F811
    staff, _ = User.objects.get_or_create(username="evstaff", defaults={"is_staff": True})
    grouped, _ = User.objects.get_or_create(username="evgrouped")
    grouped.groups.add(Group.objects.get_or_create(name="beta")[0])
    for source in (daemon_output.file_source, daemon_output.redis_source):
        out = command("eval", "new_dashboard", "--user-id", str(staff.pk), SOURCE=source)
        assert "value:    true" in out and "variant:  on" in out
        assert "reason:   TARGETING_MATCH" in out and f'"targetingKey": "{staff.pk}"' in out
        out = command("eval", "new_dashboard", SOURCE=source)  # anonymous
        assert "value:    false" in out and "variant:  off" in out
    src = daemon_output.file_source
    out = command(
        "eval", "new_dashboard", "--user-id", str(staff.pk), "--attr", "is_staff=false", SOURCE=src
    )
    assert "value:    false" in out
    out = command("eval", "beta_mode", "--attr", "email=ann@example.com", SOURCE=src)
    assert "value:    true" in out
    got = json.loads(
        command("eval", "by_group", "--user-id", str(grouped.pk), "--json", SOURCE=src)
    )
    assert (got["value"], got["variant"], got["type"]) == ("in-beta", "yes", "string")
    with override_flag("new_dashboard", True):
        out = command("eval", "new_dashboard", SOURCE=src)
        assert "value:    true" in out and "variant:  override" in out


def test_eval_errors(daemon_output: DaemonOutput) -> None:  # noqa: F811
    src = daemon_output.file_source
    with pytest.raises(CommandError, match="no_such_flag: FLAG_NOT_FOUND"):
        command("eval", "no_such_flag", SOURCE=src)
    with pytest.raises(CommandError, match="color: TYPE_MISMATCH"):
        command("eval", "color", "--type", "boolean", SOURCE=src)
    with pytest.raises(CommandError, match="--user-id 987654: no such User"):
        command("eval", "color", "--user-id", "987654", SOURCE=src)
    with pytest.raises(CommandError, match="--user-id abc"):
        command("eval", "color", "--user-id", "abc", SOURCE=src)
    with pytest.raises(CommandError, match="KEY=VALUE"):
        command("eval", "color", "--attr", "plan", SOURCE=src)
    with pytest.raises(CommandError, match="no snapshot"):
        command("eval", "color", SOURCE=f"{daemon_output.redis.url}?prefix=flagsync:typo")


SETTINGS = """
SECRET_KEY = "test"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "flagsync.django"]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}}}
USE_TZ = True
FLAGSYNC = {{"SOURCE": {source!r}}}
"""


def manage(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "opssettings.py").write_text(SETTINGS.format(source=source))
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="opssettings",
        PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    )
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_manage_py_exit_codes(daemon_output: DaemonOutput, tmp_path: Path) -> None:  # noqa: F811
    good, wrong = daemon_output.redis_source, f"{daemon_output.redis.url}?prefix=flagsync:typo"
    r = manage(tmp_path, good, "check")
    assert r.returncode == 0, r.stderr
    r = manage(tmp_path, wrong, "check")
    assert r.returncode == 1 and "flagsync.E006" in r.stderr and PREFIX in r.stderr
    r = manage(tmp_path, good, "flagsync", "status")
    assert r.returncode == 0 and "flags:      4" in r.stdout, r.stderr
    r = manage(tmp_path, wrong, "flagsync", "status")  # runs despite the failing check
    assert r.returncode == 1 and "no snapshot" in r.stderr and "flagsync:typo" in r.stderr
    r = manage(tmp_path, good, "flagsync", "eval", "color")
    assert r.returncode == 0 and 'value:    "blue"' in r.stdout, r.stderr
    r = manage(tmp_path, good, "flagsync", "eval", "nope")
    assert r.returncode == 1 and "FLAG_NOT_FOUND" in r.stderr


def test_changing_the_setting_opens_the_new_source(daemon_output: DaemonOutput) -> None:  # noqa: F811
    with override_settings(FLAGSYNC={"SOURCE": daemon_output.file_source}):
        assert isinstance(get_store(), FileStore)
        with override_settings(FLAGSYNC={"SOURCE": daemon_output.redis_source}):
            redis_store = get_store()
            assert isinstance(redis_store, RedisStore) and redis_store.prefix == PREFIX
        assert isinstance(get_store(), FileStore)
