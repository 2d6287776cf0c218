"""override_flag: force flag values in tests, the way override_settings forces settings.

Each override_flag holds its values as a one-variant flag set in a store of its own, so an
overridden flag is evaluated by the same code as a published one (a string override is not
"active", flag_value types it like its default, flag_details reports variant "override"
and reason STATIC).

An override is process-wide while it is active, like override_settings, so a live server's
thread, a thread the test starts or a task an async fixture entered it in all see it; and
a context variable lets code see the overrides entered in its own context first, so two
concurrent tasks that override the same flag each see their own value.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from django.test.utils import TestContextDecorator

from ..flagset import compile_document
from ..store import Store

__all__ = ["OVERRIDE_VARIANT", "overriding", "override_flag"]

OVERRIDE_VARIANT = "override"
"""The variant name flag_details reports for an overridden flag."""


class _OverrideStore(Store):
    """A store that serves one fixed flag set and never reads a source."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(stale_after=math.inf)
        doc = {
            "flags": {
                key: {
                    "state": "ENABLED",
                    "variants": {OVERRIDE_VARIANT: value},
                    "defaultVariant": OVERRIDE_VARIANT,
                }
                for key, value in values.items()
            }
        }
        flags, problems = compile_document(doc)
        if problems:
            found = "; ".join(f"{p.flag or '(set)'}: {p}" for p in problems)
            raise ValueError(f"override_flag: no flag can have these values: {found}")
        self._install(flags)


_lock = threading.Lock()
_everywhere: tuple[Store, ...] = ()  # every active override in the process, oldest first
_here: ContextVar[tuple[Store, ...]] = ContextVar("flagsync_django_overrides", default=())


def overriding(key: str) -> Store | None:
    """The store of the override of key that applies here, or None: the innermost one
    entered in this context, else the newest one active in the process."""
    everywhere = _everywhere
    if not everywhere:  # the production path: one global read
        return None
    for layer in reversed(_here.get()):
        if key in layer.flags and layer in everywhere:
            return layer
    for layer in reversed(everywhere):
        if key in layer.flags:
            return layer
    return None


def _without_last(layers: tuple[Store, ...], store: Store) -> tuple[Store, ...]:
    for i in range(len(layers) - 1, -1, -1):
        if layers[i] is store:
            return layers[:i] + layers[i + 1 :]
    return layers


class override_flag(TestContextDecorator):  # noqa: N801 - reads like Django's override_settings
    """Force flag values in tests, like django.test.override_settings:

    - ``with override_flag("new_dashboard", True): …`` (sync or async code),
    - ``@override_flag(beta_mode=False)`` on a test function or method (sync or async),
    - ``@override_flag("new_dashboard", True)`` on a unittest.TestCase subclass
      (SimpleTestCase, TestCase, …): active from each test's setUp to its cleanup; the
      class stays a class and every test still runs.

    Values are flag values (bool, str, number, JSON object); anything else is a ValueError.
    The innermost override of a key wins.
    """

    def __init__(self, name: str | None = None, active: Any = True, **flags: Any) -> None:
        values = dict(flags)
        if name is not None:
            values[name] = active
        self.flags = values
        self._store = _OverrideStore(values)
        super().__init__()

    def enable(self) -> override_flag:
        global _everywhere
        with _lock:
            _everywhere = (*_everywhere, self._store)
        _here.set((*_here.get(), self._store))
        return self

    def disable(self) -> None:
        global _everywhere
        with _lock:
            _everywhere = _without_last(_everywhere, self._store)
        # a no-op when disabled in another context than enable's (an async fixture's
        # teardown task): that context's copy is ignored once the override is inactive
        _here.set(_without_last(_here.get(), self._store))
