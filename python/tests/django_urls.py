"""URLs of the Django integration tests (settings in conftest.py)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import path
from django.views import View

from flagsync.django import FlagRequiredMixin, flag_is_active, flag_required, flag_value


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
