"""The types of the flagset API: value types, reasons, error codes, results, problems.

Mirrors api.go of the Go flagset package.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

MAX_DOCUMENT_SIZE = 64 << 20
MAX_DEPTH = 64


class Type(str, enum.Enum):
    """The value type a caller asks for."""

    BOOLEAN = "boolean"
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    OBJECT = "object"


class Reason(str, enum.Enum):
    STATIC = "STATIC"
    TARGETING_MATCH = "TARGETING_MATCH"
    DEFAULT = "DEFAULT"
    DISABLED = "DISABLED"
    ERROR = "ERROR"


class ErrorCode(str, enum.Enum):
    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    PARSE_ERROR = "PARSE_ERROR"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    GENERAL = "GENERAL"


# Reading a member off an Enum class runs a descriptor (Python 3.11): evaluation's hot
# path uses these module-level names instead.
_STATIC = Reason.STATIC
_TARGETING_MATCH = Reason.TARGETING_MATCH
_DEFAULT = Reason.DEFAULT
_ERROR = Reason.ERROR
_FLAG_NOT_FOUND = ErrorCode.FLAG_NOT_FOUND


class ParseError(ValueError):
    """The document could not be decoded (syntax, size, depth, encoding)."""


@dataclass(frozen=True)
class Problem:
    """One validation finding; flag is "" for set-level problems."""

    flag: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Result(NamedTuple):
    """One evaluation's outcome. metadata is shared: do not mutate it."""

    value: Any
    variant: str | None
    reason: Reason
    error_code: ErrorCode | None = None
    error_message: str = ""
    metadata: Mapping[str, Any] = _EMPTY
