from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.login_page, name="login"),
    path("beta/", views.beta, name="beta"),
    path("reports/", views.ReportsView.as_view(), name="reports"),
    path("api/flags/", views.flags_api, name="flags-api"),
    path("api/beta/", views.beta_api, name="beta-api"),
]
