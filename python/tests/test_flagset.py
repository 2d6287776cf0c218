"""Unit tests of the evaluator beyond the conformance suite: limits, YAML, numbers, diff."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flagsync import canonical
from flagsync.flagset import (
    MAX_DEPTH,
    ErrorCode,
    ParseError,
    Reason,
    Type,
    compile_document,
    diff,
    load,
    parse,
    validate_flag,
)
from flagsync.jsonlogic import js_loose_equal, js_to_number, murmur3, truthy


def doc(**flags: object) -> dict[str, object]:
    return {"flags": flags, "metadata": {"flagSetId": "t"}}


BOOL = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}


def test_too_large_document_is_rejected_before_decoding() -> None:
    with pytest.raises(ParseError, match="larger than the limit"):
        parse(b"{" + b" " * (64 << 20) + b"}")


def test_deep_nesting_is_rejected() -> None:
    with pytest.raises(ParseError, match=f"{MAX_DEPTH}"):
        parse("{" + '"a":[' * 10_000 + "]" * 10_000 + "}")
    with pytest.raises(ParseError, match=f"{MAX_DEPTH}"):
        parse("a: " + "[" * 100 + "]" * 100)


def test_nesting_limit_counts_brackets_outside_strings_only() -> None:
    at_limit = '{"a":' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}"
    assert parse(at_limit) == {"a": json.loads(at_limit)["a"]}
    with pytest.raises(ParseError, match=f"{MAX_DEPTH}"):
        parse('{"a":' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}")
    # brackets in strings, after escaped quotes and backslashes, are text
    noisy = ", ".join(['"[[{\\\\"', '"\\"[["', '"x\\\\\\"]]"'] * 40)
    text = '{"a":' + "[" * (MAX_DEPTH - 1) + noisy + "]" * (MAX_DEPTH - 1) + "}"
    assert json.dumps(parse(text)) == json.dumps(json.loads(text))
    # not JSON (a backslash outside any string) and deep: a ParseError, never a RecursionError
    with pytest.raises(ParseError):
        parse('{"a":\\"' + "[" * 100_000)


def test_invalid_utf8_and_non_object() -> None:
    with pytest.raises(ParseError, match="UTF-8"):
        parse(b'{"flags": {"\xff": 1}}')
    with pytest.raises(ParseError):
        parse("[1, 2]")
    with pytest.raises(ParseError):
        parse('{"flags": NaN}')


def test_yaml_keeps_on_off_yes_no_as_strings() -> None:
    fs, probs = load(
        "flags:\n  f:\n    state: ENABLED\n    variants: {on: true, off: false}\n"
        "    defaultVariant: on\n    metadata: {expiresAt: 2030-01-01T00:00:00Z}\n"
    )
    assert probs == []
    r = fs.evaluate("f", Type.BOOLEAN, False)
    assert (r.value, r.variant, r.reason) == (True, "on", Reason.STATIC)


def test_yaml_rejects_non_string_keys() -> None:
    with pytest.raises(ParseError, match="not a string"):
        parse("flags:\n  1: {}\n")


def test_cyclic_ref_is_a_problem_and_parse_error() -> None:
    d = doc(f={**BOOL, "targeting": {"$ref": "a"}})
    d["$evaluators"] = {"a": {"$ref": "b"}, "b": {"$ref": "a"}}
    fs, probs = compile_document(d)
    assert any(p.path == "$evaluators.a" and "cyclic" in p.message for p in probs)
    r = fs.evaluate("f", "boolean", True)
    assert (r.reason, r.error_code, r.value) == (Reason.ERROR, ErrorCode.PARSE_ERROR, True)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"nope": [1]}, 'unknown operator "nope"'),
        ({"if": [{"and": [{"bad": 1}]}]}, 'unknown operator "bad" (at if[0].and[0])'),
        ({"in": ["a", [1, {"bad": 1}]]}, 'unknown operator "bad" (at in[1][1])'),
        ({"var": [{"bad": 1}, {"==": [1]}]}, 'operator "==" takes 2 arguments, got 1 (at var[1])'),
        ({"!": [{"var": ["a", 1, 2]}]}, 'operator "var" takes 0 to 2 arguments, got 3 (at ![0])'),
        ({"if": [True, {"$ref": "nowhere"}]}, '$ref "nowhere": no such evaluator (at if[1])'),
    ],
)
def test_targeting_problems_say_where(rule: dict[str, Any], message: str) -> None:
    """The same messages and positions as Go's TestCompileProblems."""
    _, probs = compile_document(doc(f={**BOOL, "targeting": rule}))
    assert message in [p.message for p in probs]


def test_structural_problems_drop_only_that_flag() -> None:
    fs, probs = compile_document(
        doc(good=BOOL, bad={**BOOL, "defaultVariant": "onn"}, worse={"state": "X"})
    )
    assert fs.keys() == ["good"]
    assert 'flags.bad.defaultVariant: "onn" is not a variant (have: off, on)' in [
        str(p) for p in probs
    ]
    assert validate_flag("good", BOOL) == []


def test_integer_and_float_requests() -> None:
    fs, _ = compile_document(
        doc(
            i={"state": "ENABLED", "variants": {"a": 3.0, "b": 3.5}, "defaultVariant": "a"},
            j={"state": "ENABLED", "variants": {"a": 3.0, "b": 3.5}, "defaultVariant": "b"},
        )
    )
    r = fs.evaluate("i", Type.INTEGER, 0)
    assert r.value == 3 and isinstance(r.value, int)
    r = fs.evaluate("j", Type.INTEGER, 7)
    assert (r.value, r.error_code) == (7, ErrorCode.TYPE_MISMATCH)
    assert r.error_message == 'variant "b" is 3.5, not an integer'
    r = fs.evaluate("i", Type.FLOAT, 0.0)
    assert r.value == 3.0 and isinstance(r.value, float)


def test_bool_is_not_a_number() -> None:
    fs, _ = compile_document(
        doc(f={"state": "ENABLED", "variants": {"t": True}, "defaultVariant": "t"})
    )
    assert fs.evaluate("f", Type.INTEGER, 1).error_code is ErrorCode.TYPE_MISMATCH
    assert js_to_number(True) == 1.0
    assert js_loose_equal(True, 1) and not js_loose_equal(True, 2)
    assert not truthy(0) and truthy("0") and not truthy([]) and not truthy({}) and truthy({"a": 1})


def test_context_ints_and_floats_compare_like_js() -> None:
    rule = {"if": [{"==": [{"var": "n"}, 3]}, "on", "off"]}
    fs, _ = compile_document(doc(f={**BOOL, "targeting": rule}))
    assert fs.evaluate("f", "boolean", False, {"n": 3.0}).value is True
    assert fs.evaluate("f", "boolean", False, {"n": "3"}).value is True
    assert fs.evaluate("f", "boolean", True, {"n": 4}).value is False


def test_flagd_timestamp_and_flag_key() -> None:
    rule = {
        "if": [
            {
                "and": [
                    {">": [{"var": "$flagd.timestamp"}, 100]},
                    {"==": [{"var": "$flagd.flagKey"}, "f"]},
                ]
            },
            "on",
            "off",
        ]
    }
    fs, _ = compile_document(doc(f={**BOOL, "targeting": rule}))
    assert fs.evaluate("f", "boolean", False, {}, now=101).value is True
    assert fs.evaluate("f", "boolean", True, {}, now=99).value is False


def test_flagd_timestamp_defaults_to_the_clock() -> None:
    import time

    rule = {"if": [{">=": [{"var": "$flagd.timestamp"}, int(time.time())]}, "on", "off"]}
    fs, _ = compile_document(doc(f={**BOOL, "targeting": rule}))
    assert fs.evaluate("f", "boolean", False, {}).variant == "on"
    # the whole data object carries the same fields
    rule = {"if": [{"==": [{"var": ["$flagd.flagKey"]}, "g"]}, "on", "off"]}
    fs, _ = compile_document(doc(g={**BOOL, "targeting": {"if": [{"var": ""}, rule, "off"]}}))
    assert fs.evaluate("g", "boolean", False, {}).variant == "on"


def test_targeting_key_kept_apart_equals_targeting_key_in_context() -> None:
    """targeting_key= gives rules the same targetingKey as context["targetingKey"]."""
    flags = doc(
        by_var={
            **BOOL,
            "targeting": {"if": [{"==": [{"var": "targetingKey"}, "u1"]}, "on", "off"]},
        },
        by_whole_data={  # the key read off the whole data object ({"var": ""})
            **BOOL,
            "targeting": {"cat": {"map": [[{"var": ""}], {"var": "targetingKey"}]}},
            "variants": {"u1": True, "u2": True, "off": False},
        },
        fractional={
            "state": "ENABLED",
            "variants": {"a": "a", "b": "b"},
            "defaultVariant": "a",
            "targeting": {"fractional": [["a", 50], ["b", 50]]},
        },
        missing={**BOOL, "targeting": {"if": [{"missing": ["targetingKey"]}, "off", "on"]}},
    )
    fs, probs = compile_document(flags)
    assert probs == []
    typ = {"fractional": Type.STRING}
    for key in ("by_var", "by_whole_data", "fractional", "missing"):
        t = typ.get(key, Type.BOOLEAN)
        for tk in ("u1", "u2", "user-42", "user-7"):
            want = fs.evaluate(key, t, None, {"targetingKey": tk, "email": "a@b.c"})
            got = fs.evaluate(key, t, None, {"email": "a@b.c"}, targeting_key=tk)
            assert got == want, (key, tk)
            # it overrides one in the context, like OpenFeature's EvaluationContext
            over = fs.evaluate(
                key, t, None, {"targetingKey": "zz", "email": "a@b.c"}, targeting_key=tk
            )
            assert over == want, (key, tk)
    assert fs.evaluate("by_var", Type.BOOLEAN, False, {}, targeting_key="u1").variant == "on"
    assert fs.evaluate("missing", Type.BOOLEAN, False, {}).variant == "off"
    assert fs.evaluate("missing", Type.BOOLEAN, False, {}, targeting_key="u").variant == "on"


def test_results_naming_a_variant_are_shared() -> None:
    rule = {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", None]}
    fs, _ = compile_document(doc(f={**BOOL, "targeting": rule}, s=BOOL))
    a = fs.evaluate("f", Type.BOOLEAN, False, {"email": "a@example.com"})
    b = fs.evaluate("f", Type.BOOLEAN, True, {"email": "b@example.com"})
    assert a is b and (a.value, a.reason) == (True, Reason.TARGETING_MATCH)
    d1 = fs.evaluate("f", Type.BOOLEAN, True, {"email": "x@other.org"})  # rule gives null
    d2 = fs.evaluate("f", Type.BOOLEAN, True, {})
    assert d1 is d2 and (d1.value, d1.variant, d1.reason) == (False, "off", Reason.DEFAULT)
    assert fs.evaluate("s", Type.BOOLEAN, True) is fs.evaluate("s", Type.BOOLEAN, True)
    # results holding the caller's default are not shared: they differ per call
    m1 = fs.evaluate("f", Type.STRING, "x", {"email": "a@example.com"})
    m2 = fs.evaluate("f", Type.STRING, "y", {"email": "a@example.com"})
    assert (m1.value, m2.value) == ("x", "y")
    assert m1.error_code is m2.error_code is ErrorCode.TYPE_MISMATCH


@pytest.mark.parametrize(
    ("v", "want"),
    [
        (1.0, "1"),
        (1.5, "1.5"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (-0.0, "0"),
        (0.1, "0.1"),
        (123456789012345678, "123456789012345680"),
        (2.0**60, "1152921504606847000"),
        (1e-6, "0.000001"),
        (-2.5e-10, "-2.5e-10"),
        (9007199254740993, "9007199254740992"),
    ],
)
def test_number_format(v: float, want: str) -> None:
    assert canonical.encode(v) == want


def test_canonical_escapes() -> None:
    s = '"\\\b\t\n\f\r\x01\x1f/<\u2028é'
    assert canonical.encode(s) == '"\\"\\\\\\b\\t\\n\\f\\r\\u0001\\u001f/<\u2028é"'


def test_murmur3_known_answers() -> None:
    assert murmur3("") == 0
    assert murmur3("hello") == 613153351


def test_diff_and_revision() -> None:
    a, _ = compile_document(doc(x=BOOL, y=BOOL))
    b, _ = compile_document(doc(x={**BOOL, "defaultVariant": "on"}, z=BOOL))
    assert diff(a, b) == (["z"], ["y"], ["x"])
    assert diff(None, a) == (["x", "y"], [], [])
    d = doc(x=BOOL)
    d["metadata"] = {"flagSetId": "t", "flagsync.generation": 5, "$x": 1}
    r1 = compile_document(d)[0].revision
    d["metadata"]["flagsync.generation"] = 6
    assert compile_document(d)[0].revision == r1
    d["metadata"]["version"] = "pinned"
    assert compile_document(d)[0].revision == "pinned"


def test_unvalidated_document_never_raises() -> None:
    rules = [
        {"var": [[1], {"a": 1}]},
        {"+": [{"var": "a"}, [1]]},
        {"substr": ["abc", 1e300]},
        {"%": [1e308, 0.0]},
        {"in": [[1], [[1]]]},
        {"reduce": [[1, 2], {"+": [1]}, None]},
        {"fractional": [{"var": "x"}]},
        {"sem_ver": ["1.2", "~", "v1.2.9"]},
    ]
    for rule in rules:
        fs, _ = compile_document(doc(f={**BOOL, "targeting": rule}))
        for t in Type:
            r = fs.evaluate("f", t, None, {"a": {"b": [1, None]}, "x": 2})
            assert r.reason in set(Reason)
    json.dumps(rules)


def test_tuples_in_context_behave_like_arrays() -> None:
    rule = {"if": [{"in": ["beta", {"var": "groups"}]}, "on", "off"]}
    fs, _ = compile_document(doc(f={**BOOL, "targeting": rule}))
    assert fs.evaluate("f", "boolean", False, {"groups": ("a", "beta")}).value is True
    assert fs.evaluate("f", "boolean", True, {"groups": ("a",)}).value is False
    rule2 = {"if": [{"some": [{"var": "tags"}, {"==": [{"var": ""}, "x"]}]}, "on", "off"]}
    fs, _ = compile_document(doc(f={**BOOL, "targeting": rule2}))
    assert fs.evaluate("f", "boolean", False, {"tags": ("y", "x")}).value is True


def test_yaml_alias_bomb_and_merge_keys_are_rejected() -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefg"):
        prev = "abcdef"[i]
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    with pytest.raises(ParseError, match="aliases"):
        parse("\n".join(levels) + "\n")
    with pytest.raises(ParseError, match="merge keys"):
        parse("a: &a {x: 1}\nb:\n  <<: *a\n  y: 2\n")


def test_targeting_null_is_static_and_a_bare_string_is_a_parse_error() -> None:
    # Both break the JSON schema (targeting is an object), so the conformance suite cannot
    # hold them; docs/FORMAT.md "Differences from flagd" pins them here and in Go.
    fs, probs = compile_document(doc(n={**BOOL, "targeting": None}, s={**BOOL, "targeting": "on"}))
    r = fs.evaluate("n", "boolean", True)
    assert (r.value, r.variant, r.reason) == (False, "off", Reason.STATIC)
    r = fs.evaluate("s", "boolean", False)
    assert (r.value, r.reason, r.error_code) == (False, Reason.ERROR, ErrorCode.PARSE_ERROR)
    assert any(p.path == "flags.s.targeting" for p in probs)


def test_deep_context_arrays_evaluate_like_go() -> None:
    """A caller's context may nest arrays deeper than Python's stack: ToString of it still
    works (Go's reader returns the string for any depth), so both agree."""
    fs, problems = load(
        b'{"flags":{"f":{"state":"ENABLED","variants":{"7":"seven","x":"x"},'
        b'"defaultVariant":"x","targeting":{"cat":[{"var":"deep"}]}}}}'
    )
    assert not problems
    deep: list[Any] = []
    cur = deep
    for _ in range(5000):
        nxt: list[Any] = []
        cur.append(nxt)
        cur = nxt
    cur.append(7)
    r = fs.evaluate("f", Type.STRING, "d", {"deep": deep})
    assert (r.value, r.variant, r.reason) == ("seven", "7", Reason.TARGETING_MATCH)


@pytest.mark.parametrize(
    "doc",
    [
        '{"flags":{}, "metadata":{"n":1e400}}',
        '{"flags":{"f":{"state":"ENABLED","variants":{"a":-1E400}}}}',
        '{"flags":{}, "metadata":{"n":1' + "0" * 400 + "}}",
        '{"flags":{"f":{"state":"ENABLED","variants":{"a":1},"targeting":{"==":[1e999,1]}}}}',
    ],
)
def test_json_numbers_beyond_double_range_are_parse_errors(doc: str) -> None:
    """Like Go (and the eval case lines): a number beyond the double range is a parse error,
    not an infinity that later crashes the canonical encoder."""
    with pytest.raises(ParseError, match="double range"):
        parse(doc)


def test_invalid_evaluators_referred_many_times_keep_messages_small() -> None:
    """b_i = or(b_{i-1}, b_{i-1}) over an invalid b_0: every b_i is invalid, and the
    messages name the first reason only (as Go does), instead of doubling per level."""
    ev: dict[str, Any] = {"b0": {"or": [{"nope": 1}, {"nope2": 2}]}}
    for i in range(1, 41):
        ev[f"b{i}"] = {"or": [{"$ref": f"b{i - 1}"}, {"$ref": f"b{i - 1}"}]}
    doc = {
        "$evaluators": ev,
        "flags": {"g": {"state": "ENABLED", "variants": {"a": 1}, "targeting": {"$ref": "b40"}}},
    }
    fs, problems = load(json.dumps(doc).encode())
    # two problems each: b0 two unknown operators, every other one two invalid $refs
    assert len([p for p in problems if p.path.startswith("$evaluators.")]) == 82
    assert max(len(p.message) for p in problems) < 20_000
    assert fs.evaluate("g", Type.INTEGER, 7).error_code is ErrorCode.PARSE_ERROR


def test_structural_problems_in_go_order() -> None:
    """Missing fields, wrongly typed fields and unknown fields are reported with Go's
    messages in Go's order: the fields' own problems by field, then unknown fields, then
    state, then variants (the Go reader prints exactly these lines)."""
    doc = (
        b'{"flags":{"a":{"variants":{"x":1}},"b":{"state":"ENABLED"},'
        b'"c":{".":1,"state":5,"zz":2,"defaultVariant":3},"d":{"state":"","variants":{}},"e":{}}}'
    )
    _, problems = load(doc)
    assert [(p.path, p.message) for p in problems] == [
        ("flags.a.state", "required (ENABLED or DISABLED)"),
        ("flags.b.variants", "required"),
        ("flags.c.defaultVariant", "must be a string or null, got number"),
        ("flags.c.state", "must be a string (ENABLED or DISABLED), got number"),
        ("flags.c", 'unknown field "."'),
        ("flags.c", 'unknown field "zz"'),
        ("flags.c.variants", "required"),
        ("flags.d.state", "required (ENABLED or DISABLED)"),
        ("flags.d.variants", "must not be empty"),
        ("flags.e.state", "required (ENABLED or DISABLED)"),
        ("flags.e.variants", "required"),
    ]


def _many_flags(n: int) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    for i in range(n):
        f: dict[str, Any] = {
            "state": "ENABLED",
            "variants": {"on": f"v{i}", "off": "grey"},
            "defaultVariant": "off",
            "metadata": {"owner": f"team-{i % 7}"},
        }
        if i % 3 == 0:
            f["targeting"] = {"if": [{"==": [{"var": "n"}, i]}, "on", None]}
        flags[f"f{i:04d}"] = f
    return {"flags": flags, "metadata": {"flagSetId": "many"}}


def test_reload_leaves_the_garbage_collector_alone(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load, diff and a store's reload never pause the process-wide cyclic GC: a reload
    runs on a background thread while the application allocates."""
    import gc

    from flagsync import FileStore

    def refuse() -> None:
        raise AssertionError("the reader paused the process-wide garbage collector")

    monkeypatch.setattr(gc, "disable", refuse)
    monkeypatch.setattr(gc, "freeze", refuse)
    data = canonical.encode_document(_many_flags(300))
    old, _ = load(data)
    new, problems = load(data.replace(b'"v3"', b'"changed"'))
    assert problems == []
    assert diff(old, new) == ([], [], ["f0003"])
    path = tmp_path / "flags.json"
    path.write_bytes(data)
    store = FileStore(path, check_interval=3600)
    assert len(store.flags) == 300


def test_flags_compile_on_first_evaluation_and_agree() -> None:
    """A set validates every flag when made, compiles one when it is first evaluated, and
    evaluates like a set whose flags were all evaluated before, from any thread."""
    import threading

    data = canonical.encode_document(_many_flags(200))
    fs, problems = load(data)
    assert problems == [] and len(fs) == 200 and "f0001" in fs
    assert fs._flags == {}  # nothing compiled yet
    bad, problems = compile_document(
        doc(broken={**BOOL, "targeting": {"no_such_op": [1]}}, fine=BOOL)
    )
    assert [p.path for p in problems] == ["flags.broken.targeting"]
    assert bad.evaluate("broken", Type.BOOLEAN, True).error_code is ErrorCode.PARSE_ERROR
    assert bad.evaluate("fine", Type.BOOLEAN, True).value is False
    assert bad.evaluate("absent", Type.BOOLEAN, True).error_code is ErrorCode.FLAG_NOT_FOUND

    warm, _ = load(data)
    keys = warm.keys()
    expected = {k: warm.evaluate(k, Type.STRING, "d", {"n": 3}) for k in keys}
    results: list[dict[str, Any]] = []

    def evaluate_all() -> None:
        results.append({k: fs.evaluate(k, Type.STRING, "d", {"n": 3}) for k in keys})

    threads = [threading.Thread(target=evaluate_all) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(r == expected for r in results)
    assert expected["f0003"].value == "v3" and expected["f0003"].reason is Reason.TARGETING_MATCH
    assert len(fs._flags) == 200


def test_revision_is_computed_when_asked() -> None:
    fs, _ = compile_document(doc(a=BOOL))
    assert fs._revision is None
    assert fs.revision == canonical.revision(fs.document)
    versioned, _ = compile_document({"flags": {"a": BOOL}, "metadata": {"version": "v9"}})
    assert versioned.revision == "v9"


def test_diff_tells_types_apart() -> None:
    """diff is exact about types like the canonical encoding: true is not 1."""
    one, _ = compile_document(doc(a={**BOOL, "metadata": {"rank": 1}}))
    true, _ = compile_document(doc(a={**BOOL, "metadata": {"rank": True}}))
    again, _ = compile_document(doc(a={**BOOL, "metadata": {"rank": 1}}))
    assert diff(one, true) == ([], [], ["a"])
    assert diff(one, again) == ([], [], [])


def test_reload_reuses_checks_only_for_identical_definitions() -> None:
    """compile_document(doc, previous) skips checking a flag only when previous held it,
    defined exactly alike, without problems, under the same $evaluators."""
    evaluators = {"is_ch": {"==": [{"var": "country"}, "CH"]}}
    refd = {**BOOL, "targeting": {"if": [{"$ref": "is_ch"}, "on", "off"]}}
    broken = {**BOOL, "targeting": {"nope": [1]}}
    first_doc = doc(plain=BOOL, refd=refd, broken=broken, typed={**BOOL, "metadata": {"n": 1}})
    first_doc["$evaluators"] = evaluators
    first, probs = compile_document(first_doc)
    assert [p.flag for p in probs] == ["broken"]

    # unchanged: the flawed flag is reported again, nothing else is
    same, probs = compile_document(json.loads(json.dumps(first_doc)), first)
    assert [p.flag for p in probs] == ["broken"]
    assert diff(first, same) == ([], [], [])

    # a value of another type (1 -> true) is a change, and is checked again
    retyped = {
        **first_doc,
        "flags": {**first_doc["flags"], "typed": {**BOOL, "variants": {"on": True, "off": 1}}},
    }
    again, probs = compile_document(retyped, first)
    assert "typed" not in again and [p.flag for p in probs] == ["broken", "typed"]

    # an evaluator that breaks is found in the flag that refers to it, though the flag is unchanged
    changed_ev = {**first_doc, "$evaluators": {"is_ch": {"nope": []}}}
    again, probs = compile_document(changed_ev, first)
    assert {p.flag for p in probs} >= {"broken", "refd"}
    r = again.evaluate("refd", "boolean", True, {"country": "CH"})
    assert (r.reason, r.error_code) == (Reason.ERROR, ErrorCode.PARSE_ERROR)
    assert again.evaluate("plain", "boolean", True).value is False
