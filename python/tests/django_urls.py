"""URLs of the Django integration tests (settings in conftest.py)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import path
from django.views import View

from flagsync import Type
from flagsync.django import (
    FlagRequiredMixin,
    aflag_details,
    aflag_is_active,
    aflag_value,
    aget_context,
    flag_is_active,
    flag_required,
    flag_value,
)


def home(request: HttpRequest) -> HttpResponse:
    on = flag_is_active(request, "new_dashboard")
    return HttpResponse("new" if on else "old")


@flag_required("beta_mode")
def beta(request: HttpRequest) -> HttpResponse:
    return HttpResponse("beta")


@flag_required("beta_mode", redirect_to="/")
def beta_or_home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("beta")


class BetaView(FlagRequiredMixin, View):
    flag_name = "beta_mode"

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("beta-cbv")


TEMPLATE = engines["django"].from_string(
    '{% load flagsync %}{% flag "new_dashboard" %}NEW{% else %}OLD{% endflag %}'
    '|{% flag_value_of "color" "none" as c %}{{ c }}'
)


def tpl(request: HttpRequest) -> HttpResponse:
    return HttpResponse(TEMPLATE.render({}, request))


def groups(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(flag_value(request, "by_group", "none")))


urlpatterns = [
    path("", home),
    path("beta/", beta),
    path("beta-or-home/", beta_or_home),
    path("beta-cbv/", BetaView.as_view()),
    path("tpl/", tpl),
    path("groups/", groups),
]


# async views: the same pages through aflag_is_active, flag_required and the mixin
async def ahome(request: HttpRequest) -> HttpResponse:
    on = await aflag_is_active(request, "new_dashboard")
    return HttpResponse("new" if on else "old")


@flag_required("beta_mode")
async def abeta(request: HttpRequest) -> HttpResponse:
    return HttpResponse("abeta")


@flag_required("beta_mode", redirect_to="/")
async def abeta_or_home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("abeta")


class ABetaView(FlagRequiredMixin, View):
    flag_name = "beta_mode"

    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("abeta-cbv")


async def agroups(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(await aflag_value(request, "by_group", "none")))


async def atpl(request: HttpRequest) -> HttpResponse:
    await aget_context(request)  # the template tag then reads the context built here
    return HttpResponse(TEMPLATE.render({}, request))


async def adetails(request: HttpRequest) -> HttpResponse:
    d = await aflag_details(request, "color", Type.STRING, "none")
    return HttpResponse(f"{d.value}|{d.variant}|{d.reason.value}")


urlpatterns += [
    path("a/", ahome),
    path("a/beta/", abeta),
    path("a/beta-or-home/", abeta_or_home),
    path("a/beta-cbv/", ABetaView.as_view()),
    path("a/groups/", agroups),
    path("a/tpl/", atpl),
    path("a/details/", adetails),
]


async def async_view_with_sync_call(request: HttpRequest) -> HttpResponse:
    on = flag_is_active(request, "new_dashboard")  # wrong in an async view: reads request.user
    return HttpResponse("new" if on else "old")


urlpatterns += [path("a/wrong/", async_view_with_sync_call)]
