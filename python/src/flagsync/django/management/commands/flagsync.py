"""``manage.py flagsync status`` and ``manage.py flagsync eval FLAG``: what this app reads
from settings.FLAGSYNC, and what a flag gives for a user.

status reads the source once (no threads): source (password masked), flag set, revision,
generation, when the daemon generated the snapshot and how old it is (the daemon publishes
on change: the time since the last change), and the flag keys; ``--max-age SECONDS`` fails
when the snapshot is older, like the Go provider's WithMaxAge. eval evaluates through the app's
own path (its store, its CONTEXT_BUILDER, active overrides) for ``--user-id`` (a row of the
user model; anonymous without it) plus ``--attr KEY=VALUE`` (VALUE as JSON, else a
string). Both exit non-zero with a clear message when something is wrong.
"""

from __future__ import annotations

import json
import time
from argparse import ArgumentParser
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.http import HttpRequest

from ....flagset import Result, Type
from ....store import RedisStore, Store, _infer_type
from ...flags import CONTEXT_ATTR, flag_details, flagsync_settings, get_context, get_store
from ...overrides import overriding
from ...sources import open_probe, redact, scrub

_DEFAULTS: dict[Type, Any] = {
    Type.BOOLEAN: False,
    Type.STRING: "",
    Type.INTEGER: 0,
    Type.FLOAT: 0.0,
    Type.OBJECT: {},
}


class Command(BaseCommand):
    help = "Show the flag snapshot this app reads (status) or evaluate a flag (eval)."
    # the command that diagnoses a broken FLAGSYNC must run when the check reports it
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="{status,eval}")
        status = sub.add_parser("status", help="source, revision, age and flags of the snapshot")
        status.add_argument("--json", action="store_true", help="one JSON object")
        status.add_argument(
            "--max-age",
            type=float,
            metavar="SECONDS",
            help="fail when the snapshot was generated longer ago than this",
        )
        ev = sub.add_parser("eval", help="evaluate a flag for a user")
        ev.add_argument("flag")
        ev.add_argument("--user-id", help="primary key of the user to evaluate for")
        ev.add_argument(
            "--attr",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a context attribute (VALUE as JSON, else a string); repeatable",
        )
        ev.add_argument(
            "--type",
            choices=[t.value for t in Type],
            help="the type to ask for (default: the type of the flag's variants)",
        )
        ev.add_argument("--json", action="store_true", help="one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "status":
            self._status(options["json"], options["max_age"])
        else:
            self._eval(options)

    # status ------------------------------------------------------------------------

    def _status(self, as_json: bool, max_age: float | None) -> None:
        cfg = _settings()
        source = cfg["SOURCE"]
        try:
            store = open_probe(source, cfg.get("OPTIONS", {}))
        except (TypeError, ValueError, ImportError) as e:
            raise CommandError(f"FLAGSYNC: {scrub(str(e), source)}") from e
        try:
            info = _describe(store, source)
        finally:
            store.close()
        if not store.ready:
            raise CommandError(f"no snapshot from {info['source']}: {info['error']}")
        if as_json:
            self.stdout.write(json.dumps(info, indent=2))
        else:
            for label, key in (
                ("source", "source"),
                ("prefix", "prefix"),
                ("flag set", "flagSetId"),
                ("revision", "revision"),
                ("generation", "generation"),
                ("generated", "generatedAt"),
            ):
                if info.get(key) not in (None, ""):
                    self.stdout.write(f"{label + ':':<12}{info[key]}")
            age = info["ageSeconds"]
            self.stdout.write(f"{'age:':<12}{'unknown' if age is None else f'{age:.1f}s'}")
            self.stdout.write(f"{'flags:':<12}{len(info['flags'])}")
            for key in info["flags"]:
                self.stdout.write(f"  {key}")
        age = info["ageSeconds"]
        if max_age is not None and (age is None or age > max_age):
            shown = "unknown" if age is None else f"{age:.1f}s"
            raise CommandError(f"snapshot is stale: age {shown} > --max-age {max_age:g}s")

    # eval --------------------------------------------------------------------------

    def _eval(self, options: Mapping[str, Any]) -> None:
        name: str = options["flag"]
        request = _request_for(options["user_id"])
        attrs = dict(_attr(a) for a in options["attr"])
        ctx = get_context(request)
        if attrs:
            ctx = {**ctx, **attrs}
        # the app's own path from here: flag_details reads this context off the request
        setattr(request, CONTEXT_ATTR, ctx)
        store = overriding(name) or _ready_store()
        typ = Type(options["type"]) if options["type"] else _infer_type(None, store.flags, name)
        result = flag_details(request, name, typ, _DEFAULTS[typ])
        out = _result_json(name, typ, result, ctx)
        if options["json"]:
            self.stdout.write(json.dumps(out, indent=2, default=str))
        else:
            for key in ("flag", "type", "context", "value", "variant", "reason", "errorCode"):
                if out.get(key) is not None:
                    v = out[key]
                    shown = v if isinstance(v, str) and key != "value" else json.dumps(v)
                    self.stdout.write(f"{key + ':':<10}{shown}")
            if out.get("errorMessage"):
                self.stdout.write(f"{'message:':<10}{out['errorMessage']}")
        if result.error_code is not None:
            raise CommandError(f"flag {name}: {result.error_code.value}: {result.error_message}")


def _settings() -> dict[str, Any]:
    try:
        return flagsync_settings()
    except ImproperlyConfigured as e:
        raise CommandError(str(e)) from e


def _describe(store: Store, source: Any) -> dict[str, Any]:
    flags = store.flags
    generated = flags.generated_at if store.ready else None
    info: dict[str, Any] = {
        "source": redact(source),
        "ready": store.ready,
        "error": scrub(str(store.last_error), source) if store.last_error else None,
        "flagSetId": flags.flag_set_id,
        "revision": store.revision,
        "generation": flags.generation if store.ready else None,
        "generatedAt": generated.isoformat() if generated else None,
        "ageSeconds": round(time.time() - generated.timestamp(), 3) if generated else None,
        "flags": sorted(flags.keys()),
    }
    if isinstance(store, RedisStore):
        info["prefix"] = store.prefix
    return info


def _ready_store() -> Store:
    cfg = _settings()
    try:
        store = get_store()
    except (TypeError, ValueError, ImportError) as e:
        raise CommandError(f"FLAGSYNC: {scrub(str(e), cfg['SOURCE'])}") from e
    if not store.ready:
        err = scrub(str(store.last_error), cfg["SOURCE"])
        raise CommandError(f"no snapshot from {redact(cfg['SOURCE'])}: {err}")
    return store


def _request_for(user_id: str | None) -> HttpRequest:
    """A request carrying the user, as AuthenticationMiddleware would set it."""
    user: Any = AnonymousUser()
    if user_id is not None:
        model = get_user_model()
        try:
            user = model._default_manager.get(pk=user_id)
        except model.DoesNotExist as e:
            raise CommandError(f"--user-id {user_id}: no such {model.__name__}") from e
        except (ValueError, TypeError, ValidationError) as e:
            raise CommandError(f"--user-id {user_id}: not a {model.__name__} key: {e}") from e
    request = HttpRequest()
    request.user = user
    request.LANGUAGE_CODE = settings.LANGUAGE_CODE

    async def auser() -> Any:
        return user

    request.auser = auser
    return request


def _attr(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise CommandError(f"--attr {text!r}: expected KEY=VALUE")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def _result_json(name: str, typ: Type, r: Result, ctx: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "flag": name,
        "type": typ.value,
        "context": dict(ctx),
        "value": r.value,
        "variant": r.variant,
        "reason": r.reason.value,
        "errorCode": r.error_code.value if r.error_code is not None else None,
        "errorMessage": r.error_message or None,
        "metadata": dict(r.metadata),
    }
