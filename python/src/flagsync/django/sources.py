"""Looking at settings.FLAGSYNC's source from the outside, for the system check and the
flagsync management command: a one-off read that starts no background work, a redacted
form of the source for messages, and the Redis prefixes that do hold a snapshot."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from .._redis import find_snapshots
from ..store import RedisStore, Store, open_store

__all__ = ["has_snapshot", "open_probe", "redact", "scrub", "snapshot_prefixes"]

_SECRET_PARAMS = {"password", "pass", "passwd", "token"}
_MASK = "***"


def _secrets(source: str) -> list[str]:
    parts = urlsplit(source)
    found = [parts.password] if parts.password else []
    found += [v for k, v in parse_qsl(parts.query) if k.lower() in _SECRET_PARAMS and v]
    # the client decodes %-escapes, so an error may quote either form
    return sorted({*found, *(unquote(v) for v in found)}, key=len, reverse=True)


def redact(source: str | os.PathLike[str]) -> str:
    """source with any password (user:password@ or ?password=) replaced by ***."""
    s = os.fspath(source)
    parts = urlsplit(s)
    if "://" not in s or not _secrets(s):
        return s
    netloc = parts.netloc
    if parts.password:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:{_MASK}@{host}"
    query = urlencode(
        [
            (k, _MASK if k.lower() in _SECRET_PARAMS else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*:",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(text: str, source: str | os.PathLike[str]) -> str:
    """text with every secret of source masked (errors may quote what they were given)."""
    s = os.fspath(source)
    for secret in _secrets(s):
        text = text.replace(secret, _MASK)
    return text.replace(s, redact(s))


def open_probe(source: str | os.PathLike[str], options: Mapping[str, Any]) -> Store:
    """A store that reads source once and starts no thread (close it when done).

    Raises ValueError for a source open_store does not take, TypeError for options the
    store does not take and ImportError when the redis package is missing."""
    s = os.fspath(source)
    scheme = s.partition("://")[0].lower() if "://" in s else ""
    # Redis readers (redis, rediss, unix, and any redis+… variant) take start=, files watch=
    quiet = "start" if "redis" in scheme or scheme == "unix" else "watch"
    try:
        return open_store(s, **{**options, quiet: False})
    except TypeError as e:
        if quiet not in str(e):
            raise
    return open_store(s, **options)  # a reader without that keyword: close() stops it


def has_snapshot(store: RedisStore) -> bool:
    """Whether Redis holds <prefix>:snapshot (raises redis.RedisError when unreachable)."""
    return bool(store.client.exists(store.snapshot_key))


def snapshot_prefixes(store: RedisStore) -> list[str]:
    """The prefixes under which Redis holds a snapshot, from the readers' own bounded
    listing (a hint for a wrong prefix; [] when unknown)."""
    try:
        found, _ = find_snapshots(store.client)
    except Exception:  # only a hint: a restricted user may not be allowed SCAN
        return []
    return [str(f) for f in found]
