"""The Django app config of flagsync.django."""

from django.apps import AppConfig


class FlagSyncConfig(AppConfig):
    name = "flagsync.django"
    label = "flagsync"
    verbose_name = "flagsync feature flags"
