"""Async Django views against the daemon's real file and Redis output, through Django's
AsyncClient (and the sync Client, which runs async views too): aflag_is_active,
@flag_required and FlagRequiredMixin on async views, aflag_value/aflag_details, and no
synchronous database access from async code."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Group, User
from django.core.exceptions import SynchronousOnlyOperation
from django.core.management import call_command
from django.test import AsyncClient, Client, override_settings
from django_daemon import DaemonOutput, daemon_output  # noqa: F401 - a fixture

from flagsync.django import reset


@pytest.fixture(scope="module", autouse=True)
def db() -> None:
    call_command("migrate", verbosity=0, run_syncdb=True)


@pytest.fixture(params=["file", "redis"])
def source(request: pytest.FixtureRequest, daemon_output: DaemonOutput) -> Iterator[str]:  # noqa: F811
    src = daemon_output.file_source if request.param == "file" else daemon_output.redis_source
    reset()
    with override_settings(FLAGSYNC={"SOURCE": src}):
        yield src
    reset()


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run like Django's test case runs an async test: thread-sensitive sync code (the ORM)
    goes back to this thread, where the in-memory test database lives."""
    return async_to_sync(coro_fn)()


def user(username: str, **kw: Any) -> User:
    u, _ = User.objects.get_or_create(username=username, defaults=kw)
    return u


async def alogin(u: User) -> AsyncClient:
    c = AsyncClient()
    await c.aforce_login(u)
    return c


def test_aflag_is_active_reads_the_user_asynchronously(source: str) -> None:
    staff, plain = user("astaff", is_staff=True), user("aplain")

    async def go() -> list[bytes]:
        out = []
        for u in (staff, plain):
            r = await (await alogin(u)).get("/a/")
            assert r.status_code == 200
            out.append(r.content)
        out.append((await AsyncClient().get("/a/")).content)
        return out

    assert run(go) == [b"new", b"old", b"old"]


def test_flag_required_on_async_view(source: str) -> None:
    insider = user("aann", email="aann@example.com")
    outsider = user("abob", email="abob@else.org")

    async def go() -> None:
        ci, co = await alogin(insider), await alogin(outsider)
        r = await ci.get("/a/beta/")
        assert r.status_code == 200 and r.content == b"abeta"  # not a coroutine 500
        assert (await co.get("/a/beta/")).status_code == 404
        r = await co.get("/a/beta-or-home/")
        assert r.status_code == 302 and r["Location"] == "/"
        assert (await ci.get("/a/beta-or-home/")).content == b"abeta"

    run(go)
    # the sync test client runs the same async view
    c = Client()
    c.force_login(insider)
    assert c.get("/a/beta/").content == b"abeta"


def test_mixin_on_async_class_based_view(source: str) -> None:
    insider = user("acann", email="acann@example.com")
    outsider = user("acbob", email="acbob@else.org")

    async def go() -> None:
        r = await (await alogin(insider)).get("/a/beta-cbv/")
        assert r.status_code == 200 and r.content == b"abeta-cbv"
        assert (await (await alogin(outsider)).get("/a/beta-cbv/")).status_code == 404
        r = await (await alogin(insider)).post("/a/beta-cbv/")
        assert r.status_code == 405  # the async view's own method handling still runs

    run(go)


def test_groups_are_loaded_asynchronously(source: str) -> None:
    grouped = user("agrouped")
    grouped.groups.add(Group.objects.get_or_create(name="beta")[0])
    other = user("anogroup")

    async def go() -> list[bytes]:
        return [(await (await alogin(u)).get("/a/groups/")).content for u in (grouped, other)]

    assert run(go) == [b"in-beta", b"not"]


def test_template_tag_after_aget_context(source: str) -> None:
    staff = user("atplstaff", is_staff=True)

    async def go() -> list[bytes]:
        return [
            (await (await alogin(staff)).get("/a/tpl/")).content,
            (await AsyncClient().get("/a/tpl/")).content,
        ]

    assert run(go) == [b"NEW|blue", b"OLD|blue"]


def test_aflag_details(source: str) -> None:
    async def go() -> bytes:
        return (await AsyncClient().get("/a/details/")).content

    assert run(go) == b"blue|b|STATIC"


def test_sync_flag_call_in_async_view_says_what_to_use(source: str) -> None:
    u = user("awrong", is_staff=True)

    async def go() -> None:
        c = await alogin(u)
        with pytest.raises(SynchronousOnlyOperation, match="aflag_is_active"):
            await c.get("/a/wrong/")

    run(go)


async def async_builder(request: Any) -> dict[str, Any]:
    return {"is_staff": request.headers.get("X-Staff") == "1"}


def user_builder(request: Any) -> dict[str, Any]:
    return {"is_staff": bool(request.user.is_authenticated and request.user.is_staff)}


@pytest.mark.parametrize("builder", ["async_builder", "user_builder"])
def test_custom_context_builders_sync_and_async(daemon_output: DaemonOutput, builder: str) -> None:  # noqa: F811
    staff = user("abuilderstaff", is_staff=True)
    headers = {"X-Staff": "1"} if builder == "async_builder" else {}
    settings = {
        "SOURCE": daemon_output.file_source,
        "CONTEXT_BUILDER": f"test_django_async.{builder}",
    }

    async def go() -> list[bytes]:
        c = await alogin(staff)
        return [(await c.get(p, headers=headers)).content for p in ("/a/", "/")]

    reset()
    try:
        with override_settings(FLAGSYNC=settings):
            assert run(go) == [b"new", b"new"]  # async view and sync view
            c = Client()
            c.force_login(staff)
            assert c.get("/", headers=headers).content == b"new"  # plain sync request
    finally:
        reset()
