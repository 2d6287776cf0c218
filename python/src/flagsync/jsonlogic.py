"""JsonLogic with the flagd operators, compiled once into Python closures.

Semantics follow json-logic-js and JavaScript (loose equality, relational comparison,
number formatting, truthiness) exactly as the Go flagset package does, so that a Go
and a Python reader give the same answer for every rule. A compiled rule is a function
of the evaluation data (the caller's context plus targetingKey and $flagd).

The implementation is split like the Go package's jsonlogic*.go: _jsonlogic_core (state,
nodes, the operator table), _jsonlogic_compile (the compiler), _jsonlogic_values (the
JavaScript value semantics) and one module per operator family (logic, compare, arith,
string, arrays, vars, fractional, semver). This module is the public API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._jsonlogic_compile import Compiler as Compiler
from ._jsonlogic_compile import (
    type_name,
)
from ._jsonlogic_core import (
    ROOT,
    CompileError,
    EvalState,
    Node,
    Rule,
    murmur3,
)
from ._jsonlogic_values import (
    is_number,
    js_loose_equal,
    js_strict_equal,
    js_to_number,
    js_to_string,
    truthy,
)

__all__ = [
    "CompileError",
    "EvalState",
    "Node",
    "ROOT",
    "Rule",
    "compile_rule",
    "is_number",
    "js_loose_equal",
    "js_strict_equal",
    "js_to_number",
    "js_to_string",
    "murmur3",
    "truthy",
    "type_name",
]


def compile_rule(raw: Any, evaluators: Mapping[str, Any] | None = None) -> Rule:
    """Compile one JsonLogic rule; raises CompileError listing what cannot be evaluated."""
    node, errs = Compiler(evaluators).targeting(raw)
    if node is None:
        raise CompileError("; ".join(errs))

    def rule(state: EvalState) -> Any:
        return node(state, ROOT)

    return rule
