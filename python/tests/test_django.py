"""flagsync.django with Django's test client: context from request.user, decorator, mixin,
template tag, override_flag and the context-builder hook."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import DJANGO_FLAGS, write_atomic
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client, override_settings
from django_daemon import FLAGS

from flagsync.canonical import encode_document
from flagsync.django import get_store, override_flag, reset


@pytest.fixture(scope="module", autouse=True)
def db() -> None:
    call_command("migrate", verbosity=0, run_syncdb=True)


@pytest.fixture(autouse=True)
def flags_file() -> Iterator[None]:
    write_atomic(DJANGO_FLAGS, encode_document({"flags": FLAGS}))
    reset()
    yield
    reset()


def client_for(username: str, **kw: Any) -> Client:
    user, _ = User.objects.get_or_create(username=username, defaults=kw)
    c = Client()
    c.force_login(user)
    return c


def test_flag_is_active_from_user() -> None:
    assert client_for("staff", is_staff=True).get("/").content == b"new"
    assert client_for("plain").get("/").content == b"old"
    assert Client().get("/").content == b"old"


def test_flag_required_404_redirect_and_mixin() -> None:
    insider = client_for("ann", email="ann@example.com")
    outsider = client_for("bob", email="bob@else.org")
    assert insider.get("/beta/").content == b"beta"
    assert outsider.get("/beta/").status_code == 404
    r = outsider.get("/beta-or-home/")
    assert r.status_code == 302 and r["Location"] == "/"
    assert insider.get("/beta-cbv/").content == b"beta-cbv"
    assert outsider.get("/beta-cbv/").status_code == 404


def test_template_tag() -> None:
    assert client_for("staff2", is_staff=True).get("/tpl/").content == b"NEW|blue"
    assert Client().get("/tpl/").content == b"OLD|blue"


def test_groups_are_in_the_context() -> None:
    user, _ = User.objects.get_or_create(username="grouped")
    user.groups.add(Group.objects.get_or_create(name="beta")[0])
    c = Client()
    c.force_login(user)
    assert c.get("/groups/").content == b"in-beta"
    assert client_for("nogroup").get("/groups/").content == b"not"


def test_override_flag() -> None:
    with override_flag("new_dashboard", True):
        assert Client().get("/").content == b"new"
    assert Client().get("/").content == b"old"

    @override_flag(beta_mode=False)
    def check() -> None:
        assert client_for("ann2", email="ann2@example.com").get("/beta/").status_code == 404

    check()


def custom_context(request: Any) -> dict[str, Any]:
    return {"is_staff": request.headers.get("X-Staff") == "1"}


def test_context_builder_hook() -> None:
    with override_settings(
        FLAGSYNC={"SOURCE": str(DJANGO_FLAGS), "CONTEXT_BUILDER": "test_django.custom_context"}
    ):
        assert Client().get("/", HTTP_X_STAFF="1").content == b"new"
        assert Client().get("/").content == b"old"


def test_reload_when_file_changes() -> None:
    c = client_for("staff3", is_staff=True)
    assert c.get("/").content == b"new"
    changed = dict(FLAGS)
    changed["new_dashboard"] = {**FLAGS["new_dashboard"], "state": "DISABLED"}
    write_atomic(DJANGO_FLAGS, encode_document({"flags": changed}))
    assert c.get("/").content == b"old"
    assert get_store().ready
