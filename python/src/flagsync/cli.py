"""Command line: ``python -m flagsync validate FILE...`` and ``python -m flagsync eval``.

``eval`` implements the language-neutral contract of the Go ``flagsync eval``
(conformance/README.md): one canonical JSON output line per non-blank case line, so the
outputs of both implementations can be compared byte for byte.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from . import canonical
from .flagset import MAX_DOCUMENT_SIZE, FlagSet, ParseError, Problem, Type, decode_json, load

__all__ = ["main", "eval_line"]

_TYPES = {t.value: t for t in Type}


def _load_file(path: str) -> tuple[FlagSet, list[Problem]]:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_DOCUMENT_SIZE + 1)
    except OSError as e:
        raise ParseError(f"cannot read: {e.strerror or e}") from e
    try:
        return load(data)
    except ParseError as e:
        raise ParseError(f"cannot parse: {e}") from e


def _print_problems(out: IO[str], path: str, problems: Sequence[Problem]) -> None:
    for p in problems:
        if p.path:
            print(f"{path}: {p.path}: {p.message}", file=out)
        else:
            print(f"{path}: {p.message}", file=out)


class BadCase(ValueError):
    pass


def _typed_default(t: Type, v: Any) -> Any:
    if t is Type.BOOLEAN:
        if isinstance(v, bool):
            return v
        raise BadCase("is not a boolean")
    if t is Type.STRING:
        if isinstance(v, str):
            return v
        raise BadCase("is not a string")
    is_num = isinstance(v, float)
    if t is Type.INTEGER:
        if not is_num or not v.is_integer() or abs(v) > 2**53:
            raise BadCase("is not an integer (integral number, |n| <= 2^53)")
        return int(v)
    if t is Type.FLOAT:
        if is_num:
            return v
        raise BadCase("is not a number")
    if isinstance(v, dict):
        return v
    raise BadCase("is not a JSON object")


def _decode(line: str) -> Any:
    """JSON with every number as a double, like Go (beyond the double range: infinity)."""

    def bad_const(name: str) -> Any:
        raise ValueError(f"invalid number {name}")

    return decode_json(
        line,
        parse_int=float,
        parse_float=float,
        parse_constant=bad_const,
        object_pairs_hook=_object,
    )


class _Tainted(dict[str, Any]):
    """An object one of whose members held a number beyond the double range, under a key
    a later duplicate replaced: Go rejects such a member's text even so."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) < len(pairs) and not all(_finite(v) for _, v in pairs):
        return _Tainted(d)
    return d


def _finite(v: Any) -> bool:
    """False when a number in v was beyond the double range."""
    if isinstance(v, float):
        return not math.isinf(v)
    if isinstance(v, _Tainted):
        return False
    if isinstance(v, dict):
        return all(_finite(x) for x in v.values())
    if isinstance(v, list):
        return all(_finite(x) for x in v)
    return True


def _general_error() -> dict[str, Any]:
    """The output object of a case that could not be evaluated (GENERAL error)."""
    return {
        "flag": None,
        "value": None,
        "variant": None,
        "reason": "ERROR",
        "errorCode": "GENERAL",
        "metadata": {},
    }


def eval_line(fs: FlagSet, now: int, line: str) -> tuple[dict[str, Any], str | None]:
    """One case line -> (output object, error message for a bad case or None).

    The contract (conformance/README.md) and its order of checks are the Go CLI's.
    """
    out = _general_error()
    try:
        c = _decode(line)
    except (ValueError, RecursionError) as e:
        return out, f"invalid JSON object: {e}"
    if c is None:
        c = {}
    if not isinstance(c, dict):
        return out, "invalid JSON object: not an object"
    has_default = "default" in c and c["default"] is not None
    default_ok = has_default and _finite(c["default"])
    if default_ok:
        out["value"] = c["default"]
    key = c.get("flag")
    if not isinstance(key, str):
        return out, '"flag" must be a string'
    out["flag"] = key
    if c.get("type") is None:
        return out, '"type" is required'
    type_name = c["type"]
    t = _TYPES.get(type_name) if isinstance(type_name, str) else None
    if t is None:
        return out, (
            f'"type" {json.dumps(type_name)} is not one of boolean, string, integer, float, object'
        )
    if not has_default:
        return out, '"default" is required'
    if not default_ok:
        return out, f'"default" {json.dumps(c["default"])}: not representable as a double'
    try:
        default = _typed_default(t, c["default"])
    except BadCase as e:
        return out, f'"default" {json.dumps(c["default"])}: {e}'
    ctx = c.get("context")
    if ctx is None:
        ctx = {}
    if not isinstance(ctx, dict):
        return out, '"context" must be a JSON object'
    if not _finite(ctx):
        return out, '"context": a number is beyond the double range'
    r = fs.evaluate(key, t, default, ctx, now=now)
    out["value"] = r.value
    out["reason"] = r.reason.value
    out["variant"] = r.variant
    out["errorCode"] = r.error_code.value if r.error_code is not None else None
    out["metadata"] = dict(r.metadata)
    return out, None


def _cmd_validate(args: argparse.Namespace) -> int:
    code = 0
    for path in args.files:
        try:
            fs, problems = _load_file(path)
        except ParseError as e:
            print(f"{path}: {e}", file=sys.stderr)
            code = 1
            continue
        if problems:
            _print_problems(sys.stderr, path, problems)
            code = 1
            continue
        print(f"{path}: ok, {len(fs)} flags")
    return code


def _cmd_eval(args: argparse.Namespace) -> int:
    now = args.now if args.now is not None else int(time.time())
    try:
        fs, problems = _load_file(args.flags)
    except ParseError as e:
        print(f"{args.flags}: {e}", file=sys.stderr)
        return 1
    _print_problems(sys.stderr, args.flags, problems)
    if args.cases == "-":
        src: IO[bytes] = sys.stdin.buffer
    else:
        try:
            src = open(args.cases, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            print(f"{args.cases}: cannot read: {e.strerror or e}", file=sys.stderr)
            return 1
    code = 0
    out = sys.stdout.buffer
    try:
        for line_no, raw in enumerate(src, start=1):
            text = raw.decode("utf-8", errors="replace")
            if not text.strip():
                continue
            try:
                res, err = eval_line(fs, now, text)
            except Exception as e:  # noqa: BLE001 - one bad case never stops the run
                res = _general_error()
                err = f"internal error: {type(e).__name__}: {e}"
            if err is not None:
                print(f"{args.cases}:{line_no}: bad case: {err}", file=sys.stderr)
                code = 1
            out.write(canonical.encode(res).encode("utf-8") + b"\n")
    finally:
        if src is not sys.stdin.buffer:
            src.close()
    out.flush()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m flagsync")
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="check flag files (JSON or YAML)")
    v.add_argument("files", nargs="+", metavar="FILE")
    v.set_defaults(run=_cmd_validate)
    e = sub.add_parser("eval", help="evaluate JSONL cases (conformance contract)")
    e.add_argument("--flags", required=True, help="flag file (JSON or YAML)")
    e.add_argument("--cases", required=True, help="JSONL case file, - for stdin")
    e.add_argument("--now", type=int, default=None, help="fixed $flagd.timestamp (unix s)")
    e.set_defaults(run=_cmd_eval)
    args = p.parse_args(argv)
    try:
        rc: int = args.run(args)
    except BrokenPipeError:  # e.g. piped into head: not an error of ours
        sys.stderr.close()
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
