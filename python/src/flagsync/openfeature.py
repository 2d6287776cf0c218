"""An OpenFeature provider (the official ``openfeature-sdk``) backed by a flagsync Store.

    from openfeature import api
    from flagsync import open_store
    from flagsync.openfeature import FlagSyncProvider

    api.set_provider(FlagSyncProvider(open_store("var/flags.json")))
    client = api.get_client()
    client.get_boolean_value("new_dashboard", False, EvaluationContext("42", {"email": ...}))

With analytics on the store (``open_store(src, analytics=recorder)``) every evaluation
through the provider is recorded once, by the store. ``AnalyticsHook`` is a recorder that
is also an OpenFeature hook, for clients whose provider is not a flagsync store.

Results carry the variant, the reason, the error code and the flag metadata exactly as
FlagSet.evaluate computes them. Store changes become provider events:
PROVIDER_CONFIGURATION_CHANGED (with flags_changed), PROVIDER_STALE, PROVIDER_ERROR and
PROVIDER_READY (first snapshot, or recovery).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode as OFErrorCode
from openfeature.exception import ProviderNotReadyError
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagResolutionDetails, FlagValueType
from openfeature.flag_evaluation import Reason as OFReason
from openfeature.hook import Hook, HookContext, HookHints
from openfeature.provider import AbstractProvider, Metadata

from .analytics import EvaluationRecorder, _enum_text
from .flagset import ParseError, Result, Type
from .store import ChangeEvent, Store

__all__ = ["AnalyticsHook", "FlagSyncProvider"]

# module-level: reading members off the Enum class is slow on the hot path
_BOOLEAN, _STRING, _INTEGER, _FLOAT, _OBJECT = (
    Type.BOOLEAN,
    Type.STRING,
    Type.INTEGER,
    Type.FLOAT,
    Type.OBJECT,
)
_REASONS = {r.value: OFReason(r.value) for r in OFReason}
_CODES = {c.value: OFErrorCode(c.value) for c in OFErrorCode}


@dataclass
class _StoreMetadata(Metadata):
    """The provider's metadata, which the SDK hands to every hook: it tells
    AnalyticsHook which store served the evaluation."""

    store: Store | None = field(default=None, compare=False, repr=False)


# Errors the SDK answers without calling the provider: no store saw these evaluations.
_SDK_ANSWERED = frozenset({OFErrorCode.PROVIDER_NOT_READY, OFErrorCode.PROVIDER_FATAL})


class AnalyticsHook(EvaluationRecorder, Hook):
    """An EvaluationRecorder that is also an OpenFeature hook: records, in ``finally``,
    each evaluation of a client it is added to, except those a flagsync store already
    recorded into this same recorder (one row per evaluation).

        hook = AnalyticsHook("var/analytics", attributes=["plan"])
        api.add_hooks([hook])                                   # other providers
        api.set_provider(FlagSyncProvider(open_store(src, analytics=hook)))
    """

    def finally_after(
        self,
        hook_context: HookContext,
        details: FlagEvaluationDetails[FlagValueType],
        hints: HookHints,
    ) -> None:
        store = getattr(hook_context.provider_metadata, "store", None)
        if (
            store is not None
            and store.analytics is self
            and details.error_code not in _SDK_ANSWERED
        ):
            return  # the store recorded it when the provider asked
        ec: EvaluationContext | None = hook_context.evaluation_context
        attrs: tuple[Any, ...] = self._no_attributes
        tk = ""
        if ec is not None:
            tk = ec.targeting_key or ""
            if self.attributes:
                a = ec.attributes
                attrs = tuple(a.get(name) for name in self.attributes)
        self._append(
            (
                self._clock(),
                details.flag_key or hook_context.flag_key,
                details.variant or "",
                details.value,
                _enum_text(details.reason),
                _enum_text(details.error_code),
                tk,
                attrs,
            )
        )


class FlagSyncProvider(AbstractProvider):
    """OpenFeature provider over a Store (FileStore, RedisStore or any open_store result).

    The provider owns the store: shutdown() closes it.
    """

    def __init__(self, store: Store, *, init_timeout: float = 5.0, name: str = "flagsync"):
        super().__init__()
        self.store = store
        self.init_timeout = init_timeout
        self._name = name
        self._metadata = _StoreMetadata(name=name, store=store)
        self._shared: dict[int, tuple[Result, FlagResolutionDetails[Any]]] = {}
        store.add_listener(self._on_store_event)

    def get_metadata(self) -> Metadata:
        return self._metadata

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        if not self.store.wait_ready(self.init_timeout):
            err = self.store.last_error
            raise ProviderNotReadyError(f"flagsync: no snapshot yet ({err or 'timeout'})")

    def shutdown(self) -> None:
        self.store.remove_listener(self._on_store_event)
        self.store.close()

    def _on_store_event(self, ev: ChangeEvent) -> None:
        if ev.kind == "changed":
            self._shared = {}  # let the old snapshot's results go
        if not hasattr(self, "_on_emit"):
            return  # not attached to the SDK (yet)
        meta: dict[str, bool | str | int | float] = {"revision": ev.revision}
        if ev.kind == "changed":
            self.emit_provider_configuration_changed(
                ProviderEventDetails(flags_changed=list(ev.flags_changed), metadata=meta)
            )
        elif ev.kind == "ready":
            self.emit_provider_ready(ProviderEventDetails(metadata=meta))
        elif ev.kind == "stale":
            self.emit_provider_stale(ProviderEventDetails(message=str(ev.error), metadata=meta))
        elif ev.kind == "error":
            code = (
                OFErrorCode.PARSE_ERROR
                if isinstance(ev.error, ParseError)
                else OFErrorCode.PROVIDER_NOT_READY
            )
            self.emit_provider_error(
                ProviderEventDetails(message=str(ev.error), error_code=code, metadata=meta)
            )

    def _details(self, r: Result) -> FlagResolutionDetails[Any]:
        d: FlagResolutionDetails[Any] = FlagResolutionDetails(
            value=r.value,
            error_code=_CODES[r.error_code.value] if r.error_code is not None else None,
            error_message=r.error_message or None,
            reason=_REASONS[r.reason.value],
            variant=r.variant,
            # shared and immutable; validation keeps its values primitive
            flag_metadata=r.metadata,
        )
        if r.variant is not None:
            # A result naming a variant is a long-lived object of the snapshot (FlagSet
            # shares them): its details are reused too. The entry holds r, so its id
            # cannot be reused while cached; a new snapshot empties the cache.
            if len(self._shared) >= 65536:
                self._shared.clear()
            self._shared[id(r)] = (r, d)
        return d

    def _resolve(
        self, key: str, t: Type, default: Any, ec: EvaluationContext | None
    ) -> FlagResolutionDetails[Any]:
        if ec is None:
            r = self.store.evaluate(key, t, default)
        else:
            # attributes are passed as they are: no copy to add the targeting key
            r = self.store.evaluate(key, t, default, ec.attributes, targeting_key=ec.targeting_key)
        hit = self._shared.get(id(r))
        if hit is not None and hit[0] is r:
            return hit[1]
        return self._details(r)

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, _BOOLEAN, default_value, evaluation_context)

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, _STRING, default_value, evaluation_context)

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, _INTEGER, default_value, evaluation_context)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, _FLOAT, default_value, evaluation_context)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._resolve(flag_key, _OBJECT, default_value, evaluation_context)
