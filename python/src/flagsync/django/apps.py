"""The Django app config of flagsync.django."""

from django.apps import AppConfig
from django.core import checks


class FlagSyncConfig(AppConfig):
    name = "flagsync.django"
    label = "flagsync"
    verbose_name = "flagsync feature flags"

    def ready(self) -> None:
        from .checks import check_settings

        checks.register(check_settings, "flagsync")
