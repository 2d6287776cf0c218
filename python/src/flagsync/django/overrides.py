"""override_flag: force flag values in tests, the way override_settings forces settings.

Each override_flag holds its values as a one-variant flag set in a store of its own, so an
overridden flag is evaluated by the same code as a published one (a string override is not
"active", flag_value types it like its default, flag_details reports variant "override"
and reason STATIC). Active overrides live in a context variable: they follow the test into
the tasks and threads asgiref runs for it, and two concurrent tasks never see each other's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextvars import ContextVar, Token
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


_active: ContextVar[tuple[Store, ...]] = ContextVar("flagsync_django_overrides", default=())


def overriding(key: str) -> Store | None:
    """The store of the innermost active override of key, or None."""
    layers = _active.get()
    for layer in reversed(layers):
        if key in layer.flags:
            return layer
    return None


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
        self._tokens: list[Token[tuple[Store, ...]]] = []
        super().__init__()

    def enable(self) -> override_flag:
        self._tokens.append(_active.set((*_active.get(), self._store)))
        return self

    def disable(self) -> None:
        _active.reset(self._tokens.pop())
