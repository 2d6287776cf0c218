"""Snapshot readers: a file written by the daemon, or Redis.

A store holds one compiled, immutable FlagSet and swaps it with a single reference
assignment, so evaluations never take a lock and never see a half-applied update. On
any error the last good snapshot is kept and the store reports itself stale. Listeners
hear about changes (with the changed flag keys), staleness, errors and recovery; the
OpenFeature provider turns those into provider events.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

from ._redis import (
    CLUSTER_SCHEMES,
    DEFAULT_FLAG_SET_ID,
    SENTINEL_SCHEMES,
    NoSnapshotError,
    connect,
    default_prefix,
    explain_missing,
    keys_for,
)
from .flagset import (
    FlagSet,
    ParseError,
    Result,
    Type,
    compile_document,
    diff,
    load,
)

if TYPE_CHECKING:
    import redis

__all__ = [
    "ChangeEvent",
    "DEFAULT_FLAG_SET_ID",
    "DEFAULT_PREFIX",
    "DEFAULT_STALE_AFTER",
    "EvaluationSink",
    "FileStore",
    "NoSnapshotError",
    "RedisStore",
    "Store",
    "open_store",
]

log = logging.getLogger("flagsync")

DEFAULT_PREFIX = default_prefix(DEFAULT_FLAG_SET_ID)
DEFAULT_STALE_AFTER = 30.0

# bound once: module and Enum-class attribute reads cost on every evaluation
_monotonic = time.monotonic
_BOOLEAN = Type.BOOLEAN

_EMPTY_SET, _ = compile_document({"flags": {}})


@dataclass(frozen=True)
class ChangeEvent:
    """What a listener is told.

    kind is "ready" (first snapshot, or recovered after a reported failure), "changed"
    (flags_changed lists the added, removed and changed keys), "stale" (the source has been
    unreadable for stale_after seconds; the last good snapshot is still served) or "error"
    (no snapshot yet, or the source holds one that cannot be parsed; error says why).
    """

    kind: str
    flags_changed: tuple[str, ...] = ()
    revision: str = ""
    error: BaseException | None = field(default=None, compare=False)


Listener = Callable[[ChangeEvent], None]


class EvaluationSink(Protocol):
    """Where a store reports each evaluation it serves (flagsync.analytics.EvaluationRecorder).

    Called on the evaluation path: it must be quick and must not raise."""

    def record(
        self,
        flag_key: str,
        result: Result,
        context: Mapping[str, Any] | None,
        targeting_key: str | None = None,
    ) -> None: ...


def _infer_type(default: Any, flags: FlagSet, key: str) -> Type:
    if isinstance(default, bool):
        return Type.BOOLEAN
    if isinstance(default, int):
        return Type.INTEGER
    if isinstance(default, float):
        return Type.FLOAT
    if isinstance(default, str):
        return Type.STRING
    if isinstance(default, Mapping):
        return Type.OBJECT
    f = flags.flag(key)
    if f:
        v = next(iter(f["variants"].values()))
        if isinstance(v, bool):
            return Type.BOOLEAN
        if isinstance(v, str):
            return Type.STRING
        if isinstance(v, (int, float)):
            return Type.FLOAT if isinstance(v, float) and not v.is_integer() else Type.INTEGER
    return Type.OBJECT


class Store:
    """The common part of every reader: the current FlagSet, evaluation, listeners."""

    def __init__(self, stale_after: float = DEFAULT_STALE_AFTER) -> None:
        self.stale_after = stale_after
        """Seconds the source may be unreadable before the store reports itself stale."""
        self._flags: FlagSet = _EMPTY_SET
        # Readers call _before_read only once monotonic() reaches this (never for stores
        # that do not check on read): the common case costs a comparison, not a call.
        self._next_check = math.inf
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()
        self._loaded = False
        self._failing = False
        self._reported = False  # a "stale"/"error" event went out for this failure streak
        self._health_lock = threading.Lock()
        self._ok_mono = time.monotonic()  # last successful read (monotonic clock)
        self._ready_event = threading.Event()
        self.last_success: float | None = None
        """Wall-clock time (time.time()) of the last successful check."""
        self.last_error: BaseException | None = None
        """The error of the last failed check, None after a success."""
        self.analytics: EvaluationSink | None = None
        """Gets every evaluation this store serves (is_active, get, evaluate and all that
        calls them: the framework helpers, the OpenFeature provider), once; None: off."""

    # reading -------------------------------------------------------------------
    @property
    def flags(self) -> FlagSet:
        """The current FlagSet (immutable; a new object after each change)."""
        if _monotonic() >= self._next_check:
            self._before_read()
        return self._flags

    @property
    def stale(self) -> bool:
        """True when no snapshot is loaded yet, or the source has been unreadable for at
        least stale_after seconds (the last good snapshot is still served)."""
        if not self._loaded:
            return True
        if self._failing and time.monotonic() - self._ok_mono >= self.stale_after:
            self._check_health()  # whoever notices first makes sure the event went out
            return True
        return False

    @property
    def ready(self) -> bool:
        return self._loaded

    @property
    def revision(self) -> str:
        return self._flags.revision if self._loaded else ""

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until a first snapshot is loaded; False on timeout."""
        return self._ready_event.wait(timeout)

    def evaluate(
        self,
        key: str,
        typ: Type | str,
        default: Any,
        context: Mapping[str, Any] | None = None,
        *,
        targeting_key: str | None = None,
    ) -> Result:
        """Evaluate key; see FlagSet.evaluate."""
        if _monotonic() >= self._next_check:
            self._before_read()
        r = self._flags.evaluate(key, typ, default, context, targeting_key=targeting_key)
        if self.analytics is not None:
            self._record(key, r, context, targeting_key)
        return r

    def is_active(self, key: str, context: Mapping[str, Any] | None = None) -> bool:
        """The boolean value of key (False when unknown, disabled or not a boolean)."""
        if _monotonic() >= self._next_check:
            self._before_read()
        r = self._flags.evaluate(key, _BOOLEAN, False, context)
        if self.analytics is not None:
            self._record(key, r, context, None)
        return bool(r.value)

    def get(self, key: str, default: Any = None, context: Mapping[str, Any] | None = None) -> Any:
        """The value of key with the type of default (or of the flag's variants if None)."""
        if _monotonic() >= self._next_check:
            self._before_read()
        fs = self._flags
        r = fs.evaluate(key, _infer_type(default, fs, key), default, context)
        if self.analytics is not None:
            self._record(key, r, context, None)
        return r.value

    # evaluate, is_active and get (and so every helper and the OpenFeature provider) serve
    # all evaluations: each hands its result here, the one place analytics records them.
    # The check stays inline so a store without analytics pays no extra call.
    def _record(
        self,
        key: str,
        r: Result,
        context: Mapping[str, Any] | None,
        targeting_key: str | None,
    ) -> None:
        sink = self.analytics
        if sink is None:
            return  # switched off since the caller looked
        try:
            sink.record(key, r, context, targeting_key)
        except Exception:  # e.g. a lazy context attribute that fails: serve anyway
            log.exception("flagsync: analytics could not record an evaluation of %s", key)

    # listeners -----------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        with self._listeners_lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._listeners_lock, contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _emit(self, ev: ChangeEvent) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for cb in listeners:
            try:
                cb(ev)
            except Exception:  # a listener must not break the reader
                log.exception("flagsync: listener failed on %s event", ev.kind)

    # updating ------------------------------------------------------------------
    def _install(self, new: FlagSet) -> None:
        """Swap in new (one reference assignment) and notify listeners."""
        old = self._flags if self._loaded else None
        added, removed, changed = diff(old, new)
        was_loaded, was_reported = self._loaded, self._reported
        self._flags = new
        self._loaded = True
        self._ok()
        self._ready_event.set()
        keys = tuple(sorted({*added, *removed, *changed}))
        if not was_loaded or was_reported:
            self._emit(ChangeEvent("ready", keys, new.revision))
        if was_loaded and keys:
            self._emit(ChangeEvent("changed", keys, new.revision))

    def _unchanged(self, new: FlagSet) -> bool:
        """Same flags and same publish (a new generation still replaces the metadata)."""
        cur = self._flags
        return (
            self._loaded
            and new.revision == cur.revision
            and new.generation == cur.generation
            and new.metadata == cur.metadata
        )

    def _ok(self) -> None:
        self._failing = False
        self._reported = False
        self.last_error = None
        self.last_success = time.time()
        self._ok_mono = time.monotonic()

    def _succeeded_unchanged(self) -> None:
        was_reported = self._reported
        if self._failing:
            log.info("flagsync: source readable again")
        self._ok()
        if was_reported:
            self._emit(ChangeEvent("ready", (), self._flags.revision))

    def _failed(self, err: BaseException) -> None:
        if not self._failing:
            what = "serving the last good snapshot" if self._loaded else "no snapshot yet"
            log.warning("flagsync: %s (%s)", err, what)
        self._failing = True
        self.last_error = err
        self._check_health()

    def _check_health(self) -> None:
        """Report a failure streak once: "error" at once when there is no snapshot or the
        source holds one that cannot be parsed (like the Go provider's PROVIDER_ERROR),
        "stale" once an unreadable source has lasted stale_after seconds."""
        if not self._failing or self._reported:
            return
        kind = ""
        with self._health_lock:  # one event per streak even when threads race here
            if not self._failing or self._reported:
                return
            if not self._loaded or isinstance(self.last_error, ParseError):
                kind = "error"  # nothing to serve, or a snapshot that cannot be used
            elif time.monotonic() - self._ok_mono >= self.stale_after:
                kind = "stale"  # unreadable for a while: what is served may be old
            if kind:
                self._reported = True
        if kind:
            self._emit(ChangeEvent(kind, (), self.revision, self.last_error))

    def _before_read(self) -> None:
        """Hook for readers that check on read (FileStore): runs when _next_check is due."""

    def close(self) -> None:
        """Stop background work."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _register_fork_hook(store: Store, hook: Callable[[Any], None]) -> None:
    ref = weakref.ref(store)

    def after_in_child() -> None:
        s = ref()
        if s is not None:
            hook(s)

    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=after_in_child)


class FileStore(Store):
    """Reads a snapshot file and reloads it when the file is replaced.

    The file's identity (device, inode, mtime, size of the resolved target, so symlink
    swaps count) is checked at most every check_interval seconds on read, and/or by a
    background watcher thread (watch=True). For asyncio servers use check_on_read=False
    with watch=True so a request never touches the file system. Fork-safe: the watcher
    is restarted in a forked child (gunicorn --preload).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        check_interval: float = 1.0,
        check_on_read: bool = True,
        watch: bool = False,
        watch_interval: float | None = None,
        stale_after: float = DEFAULT_STALE_AFTER,
    ) -> None:
        super().__init__(stale_after)
        self.path = os.fspath(path)
        self.check_interval = check_interval
        self.watch_interval = watch_interval if watch_interval is not None else check_interval
        self._sig: tuple[int, int, int, int] | None = None
        self.check_on_read = check_on_read
        self._check_lock = threading.Lock()
        self._watch = watch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.check()
        if watch:
            self._start_watcher()
        _register_fork_hook(self, FileStore._after_fork)

    def _after_fork(self) -> None:
        self._check_lock = threading.Lock()
        self._listeners_lock = threading.Lock()
        self._health_lock = threading.Lock()
        self._pid = os.getpid()
        self._thread = None
        if self._watch and not self._stop.is_set():
            self._start_watcher()

    def _start_watcher(self) -> None:
        t = threading.Thread(target=self._watch_loop, name="flagsync-file-watch", daemon=True)
        self._thread = t
        t.start()

    def _watch_loop(self) -> None:
        while not self._stop.wait(self.watch_interval):
            self.check()

    @property
    def check_on_read(self) -> bool:
        """Whether reads check the file (at most every check_interval seconds)."""
        return self._check_on_read

    @check_on_read.setter
    def check_on_read(self, on: bool) -> None:
        self._check_on_read = on
        self._next_check = 0.0 if on else math.inf

    def _before_read(self) -> None:
        # only reached when check_on_read is on (otherwise _next_check stays infinite)
        self._next_check = time.monotonic() + self.check_interval
        if self._pid != os.getpid():
            self._after_fork()
        self.check(blocking=False)

    def check(self, *, blocking: bool = True) -> bool:
        """Reload when the file changed; True when a new snapshot was installed."""
        if not self._check_lock.acquire(blocking):
            return False
        try:
            return self._check_locked()
        finally:
            self._check_lock.release()

    def _check_locked(self) -> bool:
        if self._check_on_read:
            self._next_check = time.monotonic() + self.check_interval
        try:
            st = os.stat(self.path)
        except OSError as e:
            self._failed(OSError(e.errno, f"flag file {self.path}: {e.strerror}"))
            return False
        sig = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        if sig == self._sig:
            self._succeeded_unchanged()
            return False
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError as e:
            self._failed(OSError(e.errno, f"flag file {self.path}: {e.strerror}"))
            return False
        return self._apply(data, sig)

    def _apply(self, data: bytes, sig: tuple[int, int, int, int]) -> bool:
        try:
            fs, problems = load(data, self._flags if self._loaded else None)
        except ParseError as e:
            self._failed(ParseError(f"flag file {self.path}: {e}"))
            return False
        if problems:
            log.warning("flagsync: %s: %d problems, e.g. %s", self.path, len(problems), problems[0])
        # only remember the identity of a file that loaded, so a bad one is retried
        self._sig = sig
        if self._unchanged(fs):
            self._succeeded_unchanged()
            return False
        self._install(fs)
        return True

    def close(self) -> None:
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5)


class RedisStore(Store):
    """Reads the snapshot from Redis (the daemon's transport contract).

    The prefix is the prefix argument, else the prefix= URL query parameter, else
    ``flagsync:<flag_set_id>`` (flag_set_id argument or flagSetId= query parameter),
    else ``flagsync:default`` (the same rule as the daemon and the Go provider). Key
    names are ``{<prefix>}:snapshot`` and so on (docs/FORMAT.md "Redis").

    GETs the snapshot, then follows Pub/Sub on the changes channel in a background
    thread, polls the revision key every poll_interval as a fallback, reconnects with
    exponential backoff and re-reads after reconnecting. Never goes back to an older
    generation. When the prefix holds no snapshot, the error (logged at WARNING on the
    "flagsync" logger, kept in last_error) lists the prefixes that do hold one.
    Fork-safe: the listener thread is restarted in a forked child.

    url is redis://, rediss://, unix://, redis+sentinel://host:port,host:port/<master>
    or redis+cluster://host:port,host:port (see open_store); or pass client, a
    redis.Redis (e.g. Sentinel(...).master_for(name)) or a redis.cluster.RedisCluster.
    """

    def __init__(
        self,
        url: str | None = None,
        prefix: str | None = None,
        *,
        flag_set_id: str | None = None,
        client: redis.Redis | redis.RedisCluster | None = None,
        poll_interval: float = 5.0,
        subscribe: bool = True,
        backoff_max: float = 5.0,
        socket_timeout: float = 5.0,
        start: bool = True,
        stale_after: float = DEFAULT_STALE_AFTER,
    ) -> None:
        super().__init__(stale_after)
        import redis as redis_mod

        self._redis_mod = redis_mod
        self._own_client = client is None
        if client is None:
            if url is None:
                raise ValueError("RedisStore needs a url or a client")
            url, q_prefix, q_set = _split_prefix(url)
            prefix = prefix or q_prefix
            flag_set_id = flag_set_id or q_set
            client = connect(url, socket_timeout)
        self.client: redis.Redis | redis.RedisCluster = client
        self.prefix = prefix or default_prefix(flag_set_id)
        keys = keys_for(self.prefix)
        self.snapshot_key = keys.snapshot
        self.revision_key = keys.revision
        self.channel = keys.channel
        self.poll_interval = poll_interval
        self.subscribe = subscribe
        self.backoff_max = backoff_max
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._remote_revision = ""
        # the missing snapshot of the current failure streak, explained once (a bounded
        # SCAN), not at every poll
        self._missing: NoSnapshotError | None = None
        self.refresh()
        if start:
            self._start()
        _register_fork_hook(self, RedisStore._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._listeners_lock = threading.Lock()
        self._health_lock = threading.Lock()
        self._thread = None
        if not self._stop.is_set():
            self._start()

    def _start(self) -> None:
        t = threading.Thread(target=self._run, name="flagsync-redis", daemon=True)
        self._thread = t
        t.start()

    def refresh(self) -> bool:
        """Re-read when the revision key moved; True when a new snapshot was installed."""
        with self._lock:
            try:
                rev = self.client.get(self.revision_key)
                rev_s = rev.decode() if isinstance(rev, bytes) else (rev or "")
                if self._loaded and rev_s and rev_s == self._remote_revision:
                    self._succeeded_unchanged()
                    return False
                # snapshot and revision in one atomic MGET, so the pair always matches
                data, rev2 = self.client.mget([self.snapshot_key, self.revision_key])
                rev_s = rev2.decode() if isinstance(rev2, bytes) else (rev2 or "")
            except self._redis_mod.RedisError as e:
                self._failed(ConnectionError(f"redis {self.snapshot_key}: {e}"))
                return False
            if data is None:
                if self._missing is None:
                    self._missing = explain_missing(
                        self.client, self.prefix, self._redis_mod.RedisError
                    )
                self._failed(self._missing)
                return False
            self._missing = None
            return self._apply(data if isinstance(data, bytes) else str(data), rev_s)

    def _apply(self, data: bytes | str, rev_s: str) -> bool:
        try:
            fs, problems = load(data, self._flags if self._loaded else None)
        except ParseError as e:
            self._failed(ParseError(f"redis {self.snapshot_key}: {e}"))
            return False
        if problems:
            log.warning(
                "flagsync: %s: %d problems, e.g. %s", self.snapshot_key, len(problems), problems[0]
            )
        self._remote_revision = rev_s
        cur = self._flags
        if self._loaded and fs.generation and fs.generation < cur.generation:
            self._succeeded_unchanged()  # an older publish: never go backwards
            return False
        if self._unchanged(fs):
            self._succeeded_unchanged()
            return False
        self._install(fs)
        return True

    def _run(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            pubsub = None
            try:
                if self.subscribe:
                    pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                    pubsub.subscribe(self.channel)
                # (re)connected: read what we may have missed
                self.refresh()
                if self._failing:
                    raise _ReadFailed
                delay = 0.1
                next_poll = time.monotonic() + self.poll_interval
                while not self._stop.is_set():
                    wait = max(0.0, min(next_poll - time.monotonic(), 1.0))
                    if pubsub is not None:
                        msg = pubsub.get_message(timeout=wait)
                        if msg is not None and msg.get("type") == "message":
                            self.refresh()
                            continue
                    else:
                        self._stop.wait(wait)
                    if time.monotonic() >= next_poll:
                        next_poll = time.monotonic() + self.poll_interval
                        self.refresh()
                        if self._failing:
                            raise _ReadFailed
            except _ReadFailed:
                pass  # refresh recorded the error (kept as it is: last_error is the status)
            except (self._redis_mod.RedisError, ConnectionError, OSError) as e:
                self._failed(ConnectionError(f"redis {self.channel}: {e}"))
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()
            if self._stop.wait(delay * (0.5 + random.random())):
                return
            delay = min(delay * 2, self.backoff_max)

    def close(self) -> None:
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5)
        if self._own_client:  # a client passed in belongs to the caller
            with contextlib.suppress(Exception):
                self.client.close()


class _ReadFailed(Exception):
    """refresh failed and recorded why; the listener reconnects with backoff."""


def _split_prefix(url: str) -> tuple[str, str | None, str | None]:
    """url without its prefix= and flagSetId= query parameters, and their values."""
    parts = urlsplit(url)
    q = parse_qs(parts.query, keep_blank_values=True)
    prefix = q.pop("prefix", [None])[0]
    flag_set_id = q.pop("flagSetId", [None])[0]
    query = urlencode({k: v[-1] for k, v in q.items()})
    return (
        urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment)),
        prefix,
        flag_set_id,
    )


def open_store(
    source: str | os.PathLike[str], *, analytics: EvaluationSink | None = None, **kwargs: Any
) -> Store:
    """A store for source: "file:///path", a plain path, or a Redis URL.

    Redis URLs: "redis://host:port/db", "rediss://…" (TLS), "unix://…", a master found
    through Sentinel "redis+sentinel://[:password@]host:port,host:port/<master>[/db]"
    (sentinel_password= authenticates to the sentinels), or a cluster
    "redis+cluster://[:password@]host:port,host:port" ("rediss+…" for TLS). The prefix
    comes from the prefix= query parameter or keyword, else flagSetId= (or the
    flag_set_id keyword) gives "flagsync:<flagSetId>", else DEFAULT_PREFIX
    ("flagsync:default"). analytics records every evaluation (Store.analytics). Other
    keywords go to FileStore or RedisStore.
    """
    store = _open(os.fspath(source), **kwargs)
    store.analytics = analytics
    return store


def _open(s: str, **kwargs: Any) -> Store:
    low = s.lower()
    redis_schemes = ("redis://", "rediss://", "unix://") + tuple(
        f"{x}://" for x in SENTINEL_SCHEMES + CLUSTER_SCHEMES
    )
    if low.startswith(redis_schemes):
        return RedisStore(s, **kwargs)
    if low.startswith("file://"):
        parts = urlsplit(s)
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file URL {s!r}: only local files are supported")
        return FileStore(unquote(parts.path), **kwargs)
    if "://" in s:
        raise ValueError(
            f"unsupported flag source {_redact(s)!r} (use a path, file://, redis://, rediss://,"
            " redis+sentinel:// or redis+cluster://)"
        )
    return FileStore(s, **kwargs)


def _redact(url: str) -> str:
    """url with the password of its user info replaced, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":xxxxx@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
