"""Django integration: add ``"flagsync.django"`` to INSTALLED_APPS and configure

    FLAGSYNC = {
        "SOURCE": "file:///srv/app/var/flags.json",   # or "redis://…?prefix=flagsync:app"
        "OPTIONS": {},                                 # extra FileStore/RedisStore keywords
        "CONTEXT_BUILDER": "myapp.flags.context",      # optional: request -> mapping (or async)
    }

then ``flag_is_active(request, "new_dashboard")`` in views (``await aflag_is_active(…)`` in
async views), ``@flag_required("name")`` and ``FlagRequiredMixin`` on sync and async views,
``{% load flagsync %}{% flag "name" %}…{% else %}…{% endflag %}`` in templates and
``override_flag("name", True)`` in tests. ``manage.py check`` reports settings that cannot
work (ids flagsync.E001…, flagsync.W001) and ``manage.py flagsync status|eval`` shows what
the app reads.

The default context: targetingKey = str(user.pk), email, username, is_staff, is_superuser,
is_authenticated, groups (names; queried only if a rule reads them) and language.
"""

from __future__ import annotations

from .flags import (
    adefault_context,
    aflag_details,
    aflag_is_active,
    aflag_value,
    aget_context,
    aget_store,
    default_context,
    flag_details,
    flag_is_active,
    flag_value,
    get_context,
    get_store,
    reset,
)
from .overrides import override_flag
from .views import FlagRequiredMixin, flag_required

__all__ = [
    "FlagRequiredMixin",
    "adefault_context",
    "aflag_details",
    "aflag_is_active",
    "aflag_value",
    "aget_context",
    "aget_store",
    "default_context",
    "flag_details",
    "flag_is_active",
    "flag_required",
    "flag_value",
    "get_context",
    "get_store",
    "override_flag",
    "reset",
]
