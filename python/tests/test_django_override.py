"""override_flag works like Django's override_settings: a class decorator on
SimpleTestCase/TestCase subclasses (every test still runs), a method decorator, a context
manager, in sync and async tests; flag_is_active, aflag_is_active, flag_value,
flag_details, the template tag, @flag_required and FlagRequiredMixin all see it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import unittest
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import (
    AsyncClient,
    Client,
    LiveServerTestCase,
    SimpleTestCase,
    TestCase,
    override_settings,
)
from django_daemon import DaemonOutput, daemon_output  # noqa: F401 - a fixture

from flagsync import ErrorCode, Reason, Type
from flagsync.django import (
    aflag_is_active,
    flag_details,
    flag_is_active,
    flag_value,
    override_flag,
    reset,
)


@pytest.fixture(scope="module", autouse=True)
def db() -> None:
    call_command("migrate", verbosity=0, run_syncdb=True)


@pytest.fixture(autouse=True)
def source(daemon_output: DaemonOutput) -> Iterator[None]:  # noqa: F811
    reset()
    with override_settings(FLAGSYNC={"SOURCE": daemon_output.file_source}):
        yield
    reset()


def run_suite(*classes: type[unittest.TestCase]) -> unittest.TestResult:
    loader = unittest.TestLoader()
    suite = unittest.TestSuite(loader.loadTestsFromTestCase(c) for c in classes)
    result = unittest.TestResult()
    suite.run(result)
    return result


def assert_clean(result: unittest.TestResult) -> None:
    problems = [f"{t}: {tb}" for t, tb in [*result.errors, *result.failures]]
    assert not problems, "\n".join(problems)


def test_class_decorator_keeps_every_test_of_a_test_case() -> None:
    plain, _ = User.objects.get_or_create(username="ovplain", email="ovplain@else.org")

    @override_flag("new_dashboard", True)
    @override_flag(beta_mode=True)
    class Dashboard(TestCase):
        def test_view(self) -> None:
            c = Client()
            c.force_login(plain)
            self.assertEqual(c.get("/").content, b"new")

        def test_flag_required(self) -> None:
            c = Client()
            c.force_login(plain)
            self.assertEqual(c.get("/beta/").content, b"beta")

        def test_mixin(self) -> None:
            self.assertEqual(Client().get("/beta-cbv/").content, b"beta-cbv")

        def test_template_tag(self) -> None:
            self.assertEqual(Client().get("/tpl/").content, b"NEW|blue")

        async def test_async_view(self) -> None:
            c = AsyncClient()
            await c.aforce_login(plain)
            self.assertEqual((await c.get("/a/")).content, b"new")
            self.assertEqual((await c.get("/a/beta/")).content, b"abeta")
            self.assertEqual((await c.get("/a/beta-cbv/")).content, b"abeta-cbv")

        async def test_aflag_is_active(self) -> None:
            self.assertTrue(await aflag_is_active(None, "new_dashboard"))

    result = run_suite(Dashboard)
    assert isinstance(Dashboard, type) and issubclass(Dashboard, TestCase)
    assert result.testsRun == 6
    assert_clean(result)
    assert flag_is_active(None, "new_dashboard") is False  # gone after the suite


def test_class_decorator_on_simple_test_case_and_inherited_tests() -> None:
    @override_flag("color", "red")
    class Colors(SimpleTestCase):
        def test_value(self) -> None:
            self.assertEqual(flag_value(None, "color", "none"), "red")

        def test_details(self) -> None:
            d = flag_details(None, "color", Type.STRING, "none")
            self.assertEqual((d.value, d.variant, d.reason), ("red", "override", Reason.STATIC))

        def test_method_override_wins(self) -> None:
            with override_flag("color", "green"):
                self.assertEqual(flag_value(None, "color", "none"), "green")
            self.assertEqual(flag_value(None, "color", "none"), "red")

        @override_flag("color", "green")
        def test_method_decorator_wins(self) -> None:
            self.assertEqual(flag_value(None, "color", "none"), "green")

        @override_flag("color", "green")
        async def test_async_method_decorator(self) -> None:
            self.assertEqual(flag_value(None, "color", "none"), "green")

    class MoreColors(Colors):
        def test_more(self) -> None:
            self.assertEqual(flag_value(None, "color", "none"), "red")

    result = run_suite(Colors, MoreColors)
    assert result.testsRun == 11
    assert_clean(result)
    assert flag_value(None, "color", "none") == "blue"  # the daemon's value again


def test_method_decorator_sync_and_async() -> None:
    @override_flag("new_dashboard", True)
    def sync_check() -> bytes:
        return bytes(Client().get("/").content)

    @override_flag("new_dashboard", True)
    async def async_check() -> bytes:
        return bytes((await AsyncClient().get("/a/")).content)

    assert sync_check() == b"new"
    assert async_to_sync(async_check)() == b"new"
    assert Client().get("/").content == b"old"


def test_context_manager_inside_an_async_test() -> None:
    async def go() -> list[bytes]:
        out = []
        with override_flag("new_dashboard", True):
            out.append((await AsyncClient().get("/a/")).content)  # async view
            out.append((await AsyncClient().get("/")).content)  # sync view, other thread
            with override_flag("new_dashboard", False):
                out.append((await AsyncClient().get("/a/")).content)
            out.append((await AsyncClient().get("/a/")).content)
        out.append((await AsyncClient().get("/a/")).content)
        return out

    assert async_to_sync(go)() == [b"new", b"new", b"old", b"new", b"old"]


def test_concurrent_tasks_see_only_their_own_overrides() -> None:
    async def task(on: bool, started: asyncio.Event, other: asyncio.Event) -> list[bool]:
        with override_flag("new_dashboard", on):
            started.set()
            await other.wait()  # both overrides are active at the same time
            return [await aflag_is_active(None, "new_dashboard") for _ in range(3)]

    async def go() -> list[list[bool]]:
        a, b = asyncio.Event(), asyncio.Event()
        return list(await asyncio.gather(task(True, a, b), task(False, b, a)))

    assert async_to_sync(go)() == [[True] * 3, [False] * 3]


def test_override_values_are_typed_like_flags() -> None:
    with override_flag("new_dashboard", "yes"):
        assert flag_is_active(None, "new_dashboard") is False  # a string is not "on"
        d = flag_details(None, "new_dashboard", Type.BOOLEAN, False)
        assert d.reason is Reason.ERROR and d.error_code is ErrorCode.TYPE_MISMATCH
        assert flag_value(None, "new_dashboard") == "yes"
    with override_flag(limit=3):
        assert flag_details(None, "limit", Type.INTEGER, 0).value == 3
        assert flag_value(None, "limit", 0) == 3


def test_override_rejects_values_no_flag_can_have() -> None:
    with pytest.raises(ValueError, match="new_dashboard"):
        override_flag("new_dashboard", ["a", "b"])
    with pytest.raises(TypeError, match="unittest.TestCase"):
        override_flag("new_dashboard", True)(type("NotATest", (), {}))


def test_threads_and_other_tasks_see_an_active_override() -> None:
    seen: list[bytes] = []

    def in_thread() -> None:  # a thread the test starts: no copy of the test's context
        seen.append(bytes(Client().get("/").content))

    with override_flag("new_dashboard", True):
        t = threading.Thread(target=in_thread)
        t.start()
        t.join()
    assert seen == [b"new"]

    o = override_flag("new_dashboard", True)

    async def enter() -> None:
        o.enable()

    async def leave() -> None:
        o.disable()

    async def go() -> list[bool]:
        # like an async fixture: entered and left in tasks of their own
        await asyncio.create_task(enter())
        during = await aflag_is_active(None, "new_dashboard")
        await asyncio.create_task(leave())
        return [during, await aflag_is_active(None, "new_dashboard")]

    assert async_to_sync(go)() == [True, False]


def test_live_server_thread_sees_a_class_override() -> None:
    @override_flag("new_dashboard", True)
    @override_settings(STATIC_URL="/static/", MEDIA_URL="/media/")
    class Live(LiveServerTestCase):
        databases: set[str] = set()  # anonymous requests: no database, nothing to flush

        def test_live(self) -> None:
            with urllib.request.urlopen(f"{self.live_server_url}/") as r:
                self.assertEqual(r.read(), b"new")

    result = run_suite(Live)
    assert result.testsRun == 1
    assert_clean(result)


APP_SETTINGS = """
SECRET_KEY = "test"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes",
                  "django.contrib.sessions", "flagsync.django", "flagapp"]
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware",
              "django.contrib.auth.middleware.AuthenticationMiddleware"]
ROOT_URLCONF = "flagapp.urls"
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}}}
USE_TZ = True
FLAGSYNC = {{"SOURCE": {source!r}}}
"""

APP_URLS = """
from django.http import HttpResponse
from django.urls import path
from flagsync.django import aflag_is_active, flag_is_active, flag_required

def home(request):
    return HttpResponse("new" if flag_is_active(request, "new_dashboard") else "old")

async def ahome(request):
    return HttpResponse("new" if await aflag_is_active(request, "new_dashboard") else "old")

@flag_required("new_dashboard")
async def abeta(request):
    return HttpResponse("abeta")

urlpatterns = [path("", home), path("a/", ahome), path("a/beta/", abeta)]
"""

APP_TESTS = """
from django.contrib.auth.models import User
from django.test import TestCase
from flagsync.django import flag_details, override_flag

@override_flag("new_dashboard", True)
class DashboardTests(TestCase):
    def test_sync_view(self):
        self.assertEqual(self.client.get("/").content, b"new")

    def test_logged_in(self):
        self.client.force_login(User.objects.create(username="ann"))
        self.assertEqual(self.client.get("/").content, b"new")

    def test_details(self):
        self.assertEqual(flag_details(None, "new_dashboard", "boolean", False).variant, "override")

    async def test_async_view(self):
        self.assertEqual((await self.async_client.get("/a/")).content, b"new")

    async def test_async_flag_required(self):
        self.assertEqual((await self.async_client.get("/a/beta/")).content, b"abeta")

    @override_flag("new_dashboard", False)
    async def test_method_override(self):
        self.assertEqual((await self.async_client.get("/a/beta/")).status_code, 404)
"""


def test_manage_py_test_runs_every_test_of_a_decorated_class(
    daemon_output: DaemonOutput,  # noqa: F811
    tmp_path: Path,
) -> None:
    app = tmp_path / "flagapp"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "urls.py").write_text(APP_URLS)
    (app / "tests.py").write_text(APP_TESTS)
    (tmp_path / "flagsettings.py").write_text(APP_SETTINGS.format(source=daemon_output.file_source))
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="flagsettings",
        PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    )
    r = subprocess.run(
        [sys.executable, "-m", "django", "test", "flagapp", "-v", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "Ran 6 tests" in r.stderr and "\nOK" in r.stderr, r.stderr
