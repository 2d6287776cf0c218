"""FlagSyncProvider through the official OpenFeature SDK: details and provider events."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import write_atomic
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode, ProviderNotReadyError
from openfeature.flag_evaluation import Reason
from openfeature.provider import ProviderStatus

from flagsync import FileStore
from flagsync.canonical import encode_document
from flagsync.openfeature import FlagSyncProvider

BOOL = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}


def snapshot(staff_variant: str = "on", extra: bool = False) -> bytes:
    flags = {
        "new_dashboard": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [{"var": "is_staff"}, staff_variant, "off"]},
            "metadata": {"owner": "web"},
        },
        "limit": {
            "state": "ENABLED",
            "variants": {"small": 3, "big": 10.5},
            "defaultVariant": "small",
        },
    }
    if extra:
        flags["x"] = {"state": "DISABLED", "variants": {"a": "a"}, "defaultVariant": "a"}
    return encode_document({"flags": flags, "metadata": {"flagSetId": "app"}})


def test_details(tmp_path: Path) -> None:
    p = tmp_path / "flags.json"
    p.write_bytes(snapshot())
    api.set_provider_and_wait(FlagSyncProvider(FileStore(p)), domain="details")
    c = api.get_client("details")
    d = c.get_boolean_details("new_dashboard", False, EvaluationContext("1", {"is_staff": True}))
    assert (d.value, d.variant, d.reason) == (True, "on", Reason.TARGETING_MATCH)
    assert d.flag_metadata == {"flagSetId": "app", "owner": "web"}
    assert c.get_integer_value("limit", 0) == 3
    d = c.get_string_details("limit", "x")
    assert (d.value, d.error_code, d.reason) == ("x", ErrorCode.TYPE_MISMATCH, Reason.ERROR)
    d = c.get_boolean_details("missing", True)
    assert (d.value, d.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
    assert c.get_float_value("limit", 0.0) == 3.0
    api.shutdown()


def test_targeting_key_and_reused_details(tmp_path: Path) -> None:
    p = tmp_path / "flags.json"
    p.write_bytes(snapshot())
    store = FileStore(p, check_on_read=False)
    provider = FlagSyncProvider(store)
    rule = {"if": [{"==": [{"var": "targetingKey"}, "42"]}, "on", "off"]}
    write_atomic(p, encode_document({"flags": {"tk": {**BOOL, "targeting": rule}}}))
    assert store.check()
    # EvaluationContext.targeting_key wins over an attribute of that name
    ec = EvaluationContext("42", {"targetingKey": "7"})
    assert provider.resolve_boolean_details("tk", False, ec).variant == "on"
    assert provider.resolve_boolean_details("tk", False, EvaluationContext("7")).variant == "off"
    assert provider.resolve_boolean_details("tk", True, None).variant == "off"
    # details naming a variant are reused, until the snapshot changes
    a = provider.resolve_boolean_details("tk", False, ec)
    assert provider.resolve_boolean_details("tk", True, EvaluationContext("42")) is a
    write_atomic(p, encode_document({"flags": {"tk": {**BOOL, "defaultVariant": "on"}}}))
    assert store.check()
    b = provider.resolve_boolean_details("tk", False, ec)
    assert b is not a and (b.value, b.reason) == (True, Reason.STATIC)
    # details holding the caller's default are made per call
    m = provider.resolve_string_details("tk", "x", ec)
    assert (m.value, m.error_code) == ("x", ErrorCode.TYPE_MISMATCH)
    assert provider.resolve_string_details("tk", "y", ec).value == "y"
    provider.shutdown()


def test_events(tmp_path: Path) -> None:
    p = tmp_path / "flags.json"
    p.write_bytes(snapshot())
    store = FileStore(p, check_on_read=False, watch=True, watch_interval=0.02, stale_after=0)
    provider = FlagSyncProvider(store)
    seen: dict[ProviderEvent, list[EventDetails]] = {e: [] for e in ProviderEvent}
    cond = threading.Condition()

    def handler(event: ProviderEvent):  # type: ignore[no-untyped-def]
        def h(d: EventDetails) -> None:
            with cond:
                seen[event].append(d)
                cond.notify_all()

        return h

    api.set_provider_and_wait(provider, domain="events")
    client = api.get_client("events")
    for e in ProviderEvent:
        client.add_handler(e, handler(e))

    def wait(event: ProviderEvent, n: int) -> bool:
        with cond:
            return cond.wait_for(lambda: len(seen[event]) >= n, timeout=10)

    assert wait(ProviderEvent.PROVIDER_READY, 1)  # handlers run at once for the current state
    write_atomic(p, snapshot(staff_variant="off", extra=True))
    assert wait(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, 1)
    assert sorted(seen[ProviderEvent.PROVIDER_CONFIGURATION_CHANGED][0].flags_changed or []) == [
        "new_dashboard",
        "x",
    ]
    write_atomic(p, b"{not json")
    assert wait(ProviderEvent.PROVIDER_ERROR, 1)
    assert seen[ProviderEvent.PROVIDER_ERROR][0].error_code == ErrorCode.PARSE_ERROR
    # the last good snapshot is still served
    assert client.get_boolean_value("new_dashboard", True, EvaluationContext("1")) is False
    write_atomic(p, snapshot())
    assert wait(ProviderEvent.PROVIDER_READY, 2)
    assert wait(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, 2)
    p.unlink()  # unreadable for stale_after (0 here): stale, still serving
    assert wait(ProviderEvent.PROVIDER_STALE, 1)
    assert client.get_integer_value("limit", 0) == 3
    write_atomic(p, snapshot())
    assert wait(ProviderEvent.PROVIDER_READY, 3)
    api.shutdown()


def test_not_ready_provider_reports_error_then_recovers(tmp_path: Path) -> None:
    p = tmp_path / "late.json"
    store = FileStore(p, check_on_read=False, watch=True, watch_interval=0.02)
    provider = FlagSyncProvider(store, init_timeout=0.05)
    with pytest.raises(ProviderNotReadyError):
        api.set_provider_and_wait(provider, domain="late")
    c = api.get_client("late")
    d = c.get_boolean_details("new_dashboard", True)
    assert d.value is True and d.reason == Reason.ERROR
    ready = threading.Event()
    c.add_handler(ProviderEvent.PROVIDER_READY, lambda _d: ready.set())
    write_atomic(p, snapshot())
    assert ready.wait(10)
    assert c.get_provider_status() == ProviderStatus.READY
    assert c.get_integer_value("limit", 0) == 3
    api.shutdown()
