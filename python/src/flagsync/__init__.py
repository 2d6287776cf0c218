"""flagsync for Python: read the snapshots the flagsync daemon publishes (a file or Redis)
and evaluate feature flags exactly like the Go flagset package.

    from flagsync import open_store

    store = open_store("var/flags.json")           # or "redis://localhost:6379/0?prefix=…"
    if store.is_active("new_dashboard", {"targetingKey": "42", "is_staff": True}):
        ...

Framework integrations live in flagsync.django, flagsync.flask and flagsync.fastapi; the
OpenFeature provider in flagsync.openfeature.
"""

from .flagset import (
    ErrorCode,
    FlagSet,
    ParseError,
    Problem,
    Reason,
    Result,
    Type,
    compile_document,
    diff,
    load,
    parse,
    validate,
)
from .store import (
    DEFAULT_FLAG_SET_ID,
    DEFAULT_PREFIX,
    ChangeEvent,
    FileStore,
    NoSnapshotError,
    RedisStore,
    Store,
    open_store,
)

__all__ = [
    "DEFAULT_FLAG_SET_ID",
    "DEFAULT_PREFIX",
    "ChangeEvent",
    "ErrorCode",
    "FileStore",
    "FlagSet",
    "NoSnapshotError",
    "ParseError",
    "Problem",
    "Reason",
    "RedisStore",
    "Result",
    "Store",
    "Type",
    "compile_document",
    "diff",
    "load",
    "open_store",
    "parse",
    "validate",
]

__version__ = "0.1.0"
