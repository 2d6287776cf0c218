"""Record flag evaluations to CSV files for experiment analysis.

``EvaluationRecorder`` is the Python twin of the Go ``analytics`` package: same columns,
same formatting rules (docs/LIFECYCLE.md, "Evaluation analytics"), byte-identical rows
for the same evaluations. Recording only appends a small tuple to a bounded buffer on
the evaluation path; a background thread formats, buffers, rotates and writes. When the
buffer is full, evaluations are dropped and counted instead of slowed down.

One hook point: a store with a recorder (``open_store(src, analytics=recorder)`` or
``store.analytics = recorder``) records every evaluation it serves — ``store.is_active``,
``get`` and ``evaluate``, and so Flask's ``g.flags``, FastAPI's ``Depends``, Django's
``flag_is_active`` and the OpenFeature provider — exactly once. For other OpenFeature
providers, ``flagsync.openfeature.AnalyticsHook`` (a recorder that is also an
OpenFeature hook) records through the SDK; it skips what a store already recorded.

Fork-safe: a child process (gunicorn/uWSGI pre-fork, multiprocessing) starts with an
empty buffer, its own writer thread and its own files (the pid is in the file name);
rows the parent had not written yet stay the parent's. Needs no third-party package::

    from flagsync import open_store
    from flagsync.analytics import EvaluationRecorder

    recorder = EvaluationRecorder("var/analytics", attributes=["plan"],
                                  hash_targeting_key=True, salt=os.environ["ANALYTICS_SALT"])
    store = open_store("redis://…", analytics=recorder)
    ...
    recorder.close()  # also runs at interpreter exit
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import hmac
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .canonical import encode_string

if TYPE_CHECKING:
    from .flagset import Result

__all__ = [
    "EvaluationRecorder",
    "BASE_COLUMNS",
    "ATTRIBUTE_PREFIX",
    "header",
    "format_value",
    "format_row",
    "csv_field",
]

BASE_COLUMNS = (
    "timestamp",
    "flag_key",
    "variant",
    "value",
    "reason",
    "error_code",
    "targeting_key",
)
ATTRIBUTE_PREFIX = "attr_"

DEFAULT_PREFIX = "evaluations"
DEFAULT_MAX_BYTES = 64 << 20
DEFAULT_MAX_AGE = 3600.0
DEFAULT_BUFFER_SIZE = 8192
DEFAULT_FLUSH_INTERVAL = 1.0
_POLL_INTERVAL = 0.05
_WRITE_CHUNK = 64 << 10

# One evaluation as captured on the hot path:
# (time_ns, flag, variant, value, reason, error_code, targeting_key, attrs)
_Record = tuple[int, str, str, Any, str, str, str, tuple[Any, ...]]


def csv_field(s: str) -> str:
    """One CSV field: quoted (with "" for ") when it contains a comma, a quote, CR or LF,
    or starts with a space or tab; as is otherwise."""
    if s and (s[0] in " \t" or any(c in s for c in ',"\r\n')):
        return '"' + s.replace('"', '""') + '"'
    return s


def header(attributes: Sequence[str] = ()) -> str:
    """The header row (without the newline)."""
    cols = list(BASE_COLUMNS) + [ATTRIBUTE_PREFIX + a for a in attributes]
    return ",".join(csv_field(c) for c in cols)


def _format_number(x: float) -> str:
    # Fewest digits that read back as x: positional for 1e-6 <= |x| < 1e21, otherwise
    # d.ddde±XX — the same text as Go's strconv 'f'/'e' with precision -1.
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    a = abs(x)
    if 1e-6 <= a < 1e21:
        if x == int(x):
            return str(int(x))
        return format(Decimal(repr(x)), "f")
    return repr(x)  # Python's repr uses the exponent form in this range


def _json_string(s: str) -> str:
    # The canonical escapes, plus U+2028/U+2029 (the CSV spec escapes them too).
    return encode_string(s).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _json(v: Any) -> str:
    # Compact JSON with sorted keys and the number rule above.
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return _json_string(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _format_number(v)
    if isinstance(v, Mapping):
        items = sorted((str(k), val) for k, val in v.items())
        return "{" + ",".join(_json_string(k) + ":" + _json(val) for k, val in items) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_json(e) for e in v) + "]"
    return _json_string(f"<unencodable {type(v).__name__}>")


def format_value(v: Any) -> str:
    """A flag value or attribute as text: None → "", booleans → true/false, strings as
    is, numbers per the number rule, anything else as compact canonical JSON."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _format_number(v)
    return _json(v)


def _format_timestamp(ns: int) -> str:
    ms = ns // 1_000_000
    dt = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def _text(v: Any) -> str:
    # a targeting key is a string in OpenFeature; a dict context may hold a number
    return v if isinstance(v, str) else format_value(v)


def _enum_text(v: Any) -> str:
    if v is None:
        return ""
    return str(getattr(v, "value", v))


def format_row(
    time_ns: int,
    flag: str,
    variant: str | None,
    value: Any,
    reason: Any,
    error_code: Any,
    targeting_key: str,
    attrs: Sequence[Any] = (),
) -> str:
    """One CSV line (with the newline). targeting_key is written as given (hash first)."""
    fields = [
        _format_timestamp(time_ns),
        csv_field(flag),
        csv_field(variant or ""),
        csv_field(format_value(value)),
        csv_field(_enum_text(reason)),
        csv_field(_enum_text(error_code)),
        csv_field(targeting_key),
    ]
    fields.extend(csv_field(format_value(a)) for a in attrs)
    return ",".join(fields) + "\n"


class EvaluationRecorder:
    """Writes one CSV row per recorded evaluation (see the module doc).

    ``max_bytes``/``max_age`` (seconds) start a new file; ``None`` or a value <= 0
    disables that trigger. ``salt`` (str or bytes) turns the targeting-key hash into an
    HMAC-SHA256; without it ``hash_targeting_key`` uses plain SHA-256.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        prefix: str = DEFAULT_PREFIX,
        attributes: Sequence[str] = (),
        hash_targeting_key: bool = False,
        salt: str | bytes = b"",
        max_bytes: int | None = DEFAULT_MAX_BYTES,
        max_age: float | None = DEFAULT_MAX_AGE,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if buffer_size <= 0:
            raise ValueError("buffer_size must be positive")
        self.directory = os.fspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.prefix = prefix
        self.attributes = tuple(attributes)
        self._no_attributes: tuple[None, ...] = (None,) * len(self.attributes)
        self._hash = hash_targeting_key
        self._salt = salt.encode() if isinstance(salt, str) else bytes(salt)
        self._max_bytes = max_bytes if max_bytes and max_bytes > 0 else 0
        self._max_age_ns = int(max_age * 1e9) if max_age and max_age > 0 else 0
        self._buffer_size = buffer_size
        self._wake_at = max(buffer_size // 4, 1)
        self._flush_interval = flush_interval
        self._clock = clock
        self._header = (header(self.attributes) + "\n").encode()
        self._dropped = 0
        self._written = 0
        self._start()
        ref = weakref.ref(self)

        def after_fork_in_child() -> None:
            hook = ref()
            if hook is not None:
                hook._after_fork()

        def at_exit() -> None:
            hook = ref()
            if hook is not None:
                hook.close(timeout=5.0)

        os.register_at_fork(after_in_child=after_fork_in_child)
        atexit.register(at_exit)

    # -- state owned by one process; rebuilt after fork --------------------------------

    def _start(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[_Record] = []
        self._closed = False
        self._wake = threading.Event()
        self._flush_waiters: list[threading.Event] = []
        self._fd = -1
        self._buf = bytearray()
        self._size = 0
        self._opened_ns = 0
        self._seq = 0
        self._thread = threading.Thread(target=self._run, name="flagsync-analytics", daemon=True)
        self._thread.start()

    def _after_fork(self) -> None:
        # Runs in the child's only thread. The parent's pending rows are the parent's to
        # write; the inherited descriptor is closed here without writing our buffer.
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        was_closed = self._closed
        self._dropped = 0
        self._written = 0
        self._start()
        if was_closed:
            self.close()

    # -- evaluation path ---------------------------------------------------------------

    def record(
        self,
        flag_key: str,
        result: Result,
        context: Mapping[str, Any] | None,
        targeting_key: str | None = None,
    ) -> None:
        """Record one evaluation served by a store (Store calls this; see the module doc).
        targeting_key, when given, wins over context["targetingKey"]."""
        attrs = self._no_attributes
        if context is not None:
            if targeting_key is None:
                targeting_key = context.get("targetingKey")
            if self.attributes:
                attrs = tuple(context.get(name) for name in self.attributes)
        self._append(
            (
                self._clock(),
                flag_key,
                result.variant or "",
                result.value,
                _enum_text(result.reason),
                _enum_text(result.error_code),
                _text(targeting_key),
                attrs,
            )
        )

    def _append(self, rec: _Record) -> None:
        with self._lock:
            if self._closed or len(self._pending) >= self._buffer_size:
                self._dropped += 1
                return
            self._pending.append(rec)
            n = len(self._pending)
        if n == self._wake_at:
            self._wake.set()

    @property
    def dropped(self) -> int:
        """Evaluations not recorded (buffer full or hook closed)."""
        return self._dropped

    @property
    def written(self) -> int:
        """Rows written so far by this process."""
        return self._written

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every evaluation recorded before the call is in the file."""
        ev = threading.Event()
        with self._lock:
            if not self._thread.is_alive():
                return False
            self._flush_waiters.append(ev)
        self._wake.set()
        return ev.wait(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Stop recording, write what is buffered and close the file. Idempotent."""
        with self._lock:
            self._closed = True
        self._wake.set()
        if self._thread is threading.current_thread():
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        last_flush = time.monotonic()
        while True:
            self._wake.wait(_POLL_INTERVAL)
            self._wake.clear()
            with self._lock:
                batch, self._pending = self._pending, []
                waiters, self._flush_waiters = self._flush_waiters, []
                closing = self._closed
            for rec in batch:
                self._write(rec)
            now = time.monotonic()
            if waiters or closing or now - last_flush >= self._flush_interval:
                last_flush = now
                self._flush()
                if (
                    self._fd >= 0
                    and self._max_age_ns
                    and self._clock() - self._opened_ns >= self._max_age_ns
                ):
                    self._close_file()
            for w in waiters:
                w.set()
            if closing:
                with self._lock:
                    leftover, self._pending = self._pending, []
                for rec in leftover:  # appended between the swap and closing
                    self._write(rec)
                self._close_file()
                return

    def _targeting(self, key: str) -> str:
        if not self._hash or not key:
            return key
        if self._salt:
            return hmac.new(self._salt, key.encode(), hashlib.sha256).hexdigest()
        return hashlib.sha256(key.encode()).hexdigest()

    def _write(self, rec: _Record) -> None:
        at = rec[0]
        if self._fd >= 0 and (
            (self._max_bytes and self._size >= self._max_bytes)
            or (self._max_age_ns and at - self._opened_ns >= self._max_age_ns)
        ):
            self._close_file()
        if self._fd < 0:
            try:
                self._open(at)
            except OSError:
                self._dropped += 1
                return
        line = format_row(
            at, rec[1], rec[2], rec[3], rec[4], rec[5], self._targeting(rec[6]), rec[7]
        ).encode()
        self._buf += line
        self._size += len(line)
        self._written += 1
        if len(self._buf) >= _WRITE_CHUNK:
            self._flush()

    def _open(self, at_ns: int) -> None:
        stamp = datetime.fromtimestamp(at_ns // 1_000_000_000, tz=timezone.utc)
        while True:
            self._seq += 1
            name = os.path.join(
                self.directory,
                f"{self.prefix}-{stamp.strftime('%Y%m%dT%H%M%SZ')}-{os.getpid()}-{self._seq:04d}.csv",
            )
            try:
                self._fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            self._opened_ns = at_ns
            self._buf += self._header
            self._size = len(self._header)
            return

    def _flush(self) -> None:
        if self._fd < 0 or not self._buf:
            return
        view = memoryview(self._buf)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError:
            pass  # disk full or similar: the rows are lost, the app keeps running
        finally:
            view.release()
            self._buf.clear()

    def _close_file(self) -> None:
        if self._fd < 0:
            return
        self._flush()
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = -1


def __getattr__(name: str) -> Any:
    # AnalyticsHook needs the OpenFeature SDK; it lives in flagsync.openfeature and is
    # found here too, where it used to be
    if name == "AnalyticsHook":
        from .openfeature import AnalyticsHook

        return AnalyticsHook
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
