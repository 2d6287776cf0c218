"""The system check of settings.FLAGSYNC (run by ``manage.py check``, runserver, migrate…).

Errors are settings that cannot work: flagsync.E001 no FLAGSYNC/SOURCE, E002 OPTIONS the
store does not take, E003 a CONTEXT_BUILDER that cannot be imported, E004 a SOURCE that is
not a flag source, E005 a file that cannot be read, E006 no snapshot under the Redis prefix,
E007 a snapshot that cannot be parsed. flagsync.W001: Redis did not answer, so nothing was
checked (an outage must not stop every management command). Messages never show a password.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.utils.module_loading import import_string

from ..flagset import ParseError
from ..store import DEFAULT_PREFIX, RedisStore, Store
from .sources import has_snapshot, open_probe, redact, scrub, snapshot_prefixes

__all__ = ["check_settings"]

_SOURCE = 'FLAGSYNC["SOURCE"]'


def check_settings(app_configs: Sequence[AppConfig] | None = None, **_: Any) -> list[CheckMessage]:
    """Check that settings.FLAGSYNC can work: the settings' shape, then one read of the source."""
    cfg = getattr(settings, "FLAGSYNC", None)
    source = cfg.get("SOURCE") if isinstance(cfg, dict) else None
    if not isinstance(source, (str, os.PathLike)) or not os.fspath(source):
        return [
            Error(
                "settings.FLAGSYNC must be a dict with a SOURCE: the flag file or Redis URL "
                "the daemon publishes to",
                hint='FLAGSYNC = {"SOURCE": "file:///srv/app/var/flags.json"} or '
                '{"SOURCE": "redis://host:6379/0?prefix=flagsync:<flagSetId>"}',
                id="flagsync.E001",
            )
        ]
    assert isinstance(cfg, dict)
    options = cfg.get("OPTIONS", {})
    if not isinstance(options, dict):
        return [
            Error(
                'FLAGSYNC["OPTIONS"] must be a dict of store keywords, '
                f"not {type(options).__name__}",
                id="flagsync.E002",
            )
        ]
    messages = _check_builder(cfg.get("CONTEXT_BUILDER"))
    try:
        store = open_probe(source, options)
    except TypeError as e:
        return [*messages, _options_error(e)]
    except ImportError as e:
        return [
            *messages,
            Error(
                f"{_SOURCE} = {redact(source)!r} needs a package that is not installed: {e}",
                hint='pip install "flagsync[redis]"',
                id="flagsync.E004",
            ),
        ]
    except ValueError as e:
        return [
            *messages,
            Error(
                f"{_SOURCE} = {redact(source)!r} is not a flag source: {scrub(str(e), source)}",
                hint="a path, file:///path, redis://, rediss:// or unix:// URL",
                id="flagsync.E004",
            ),
        ]
    try:
        return [*messages, *_check_read(store, os.fspath(source))]
    finally:
        store.close()


def _options_error(e: TypeError) -> Error:
    return Error(
        f'FLAGSYNC["OPTIONS"] has a keyword the store does not take: {e}',
        hint="FileStore: check_interval, check_on_read, watch, watch_interval, stale_after; "
        "RedisStore: prefix, poll_interval, subscribe, backoff_max, socket_timeout, stale_after",
        id="flagsync.E002",
    )


def _check_builder(path: Any) -> list[CheckMessage]:
    if not path:
        return []
    what = f'FLAGSYNC["CONTEXT_BUILDER"] = {path!r}'
    try:
        builder = import_string(str(path))
    except ImportError as e:
        return [Error(f"{what} cannot be imported: {e}", id="flagsync.E003")]
    if not callable(builder):
        return [Error(f"{what} is not callable (request -> mapping)", id="flagsync.E003")]
    return []


def _check_read(store: Store, source: str) -> list[CheckMessage]:
    if store.ready:
        return []
    shown = redact(source)
    err = store.last_error
    reason = scrub(str(err), source) if err is not None else "nothing read"
    if isinstance(err, ParseError):
        return [
            Error(
                f"{_SOURCE} = {shown!r} holds a snapshot that cannot be parsed: {reason}",
                hint="the source must be the snapshot the flagsync daemon publishes",
                id="flagsync.E007",
            )
        ]
    if not isinstance(store, RedisStore):
        return [
            Error(
                f"{_SOURCE} = {shown!r} cannot be read: {reason}",
                hint="point it at the daemon's outputs.file.path, readable by this process",
                id="flagsync.E005",
            )
        ]
    import redis

    try:
        present = has_snapshot(store)
    except redis.RedisError as e:
        return [
            Warning(
                f"{_SOURCE} = {shown!r}: Redis did not answer, so the snapshot under prefix "
                f"{store.prefix!r} was not checked: {scrub(str(e), source)}",
                id="flagsync.W001",
            )
        ]
    if present:  # published between the read and now
        return []
    return [
        Error(
            f"{_SOURCE} = {shown!r}: no snapshot under prefix {store.prefix!r} "
            f"(key {store.snapshot_key}), so every flag would get its default",
            hint=_prefix_hint(store),
            id="flagsync.E006",
        )
    ]


def _prefix_hint(store: RedisStore) -> str:
    found = snapshot_prefixes(store)
    hint = (
        f"snapshots found under: {', '.join(found)}; set ?prefix=… in the URL"
        if found
        else "no snapshot found under any prefix: has the daemon published to this Redis?"
    )
    if store.prefix == DEFAULT_PREFIX:
        hint += (
            f" (the URL names no prefix, so {DEFAULT_PREFIX} is read; the daemon publishes "
            "under outputs.redis.prefix, by default flagsync:<flagSetId>)"
        )
    return hint
