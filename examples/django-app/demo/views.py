"""The seed's snippets made real: new_dashboard for staff, new_auth_flow for @example.com."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.generic import TemplateView
from flagsync.django import (
    FlagRequiredMixin,
    aflag_is_active,
    aflag_value,
    flag_is_active,
    flag_required,
)


def dashboard(request: HttpRequest) -> HttpResponse:
    # quickstart: staff (user.is_staff, or alice@/bob@example.com via the is_staff evaluator) get the new one
    template = (
        "demo/new_dashboard.html"
        if flag_is_active(request, "new_dashboard")
        else ("demo/dashboard.html")
    )
    return render(request, template)


def login_page(request: HttpRequest) -> HttpResponse:
    return render(request, "demo/login.html")


@flag_required("beta_mode")
def beta(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"beta": True})


class ReportsView(FlagRequiredMixin, TemplateView):
    flag_name = "new_dashboard"
    flag_redirect_to = "dashboard"
    template_name = "demo/reports.html"


# async views: the a… functions read the user with `await request.auser()`
async def flags_api(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "new_dashboard": await aflag_is_active(request, "new_dashboard"),
            "checkout_button_color": await aflag_value(
                request, "checkout_button_color", "#000000"
            ),
        }
    )


@flag_required("beta_mode")
async def beta_api(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"beta": True})
