"""The Django app config of flagsync.django: registers the system check and the
settings-change receiver when Django is ready (importing the package does neither)."""

from django.apps import AppConfig
from django.core import checks
from django.core.signals import setting_changed


class FlagSyncConfig(AppConfig):
    name = "flagsync.django"
    label = "flagsync"
    verbose_name = "flagsync feature flags"

    def ready(self) -> None:
        from .checks import check_settings
        from .flags import reset_on_setting_changed

        checks.register(check_settings, "flagsync")
        setting_changed.connect(reset_on_setting_changed, dispatch_uid="flagsync.django.reset")
