package flagset

import (
	"encoding/json"
	"reflect"
	"testing"
)

// evalRule compiles rule (JSON) and runs it on ctx (JSON) with flag key "f" at time 1700000000.
func evalRule(t *testing.T, rule, ctx string) any {
	t.Helper()
	var c map[string]any
	if ctx != "" {
		if err := json.Unmarshal([]byte(ctx), &c); err != nil {
			t.Fatalf("ctx %s: %v", ctx, err)
		}
	}
	var v any
	if err := json.Unmarshal([]byte(rule), &v); err != nil {
		t.Fatalf("rule %s: %v", rule, err)
	}
	var errs []string
	n := newRuleCompiler(nil).compile(v, nil, &errs)
	if len(errs) > 0 {
		t.Fatalf("rule %s: %v", rule, errs)
	}
	return n.eval(&state{ctx: c, flagKey: "f", now: 1700000000, hasNow: true})
}

func TestOperators(t *testing.T) {
	ctx := `{"targetingKey": "user-1", "email": "ann@example.com", "age": 42, "n": null, "s": "",
	  "user": {"tags": ["a", "b"], "address": {"city": "Zürich"}}, "nums": [1, 2, 3, 4], "ver": "v1.2.3"}`
	cases := []struct{ rule, want string }{
		// var
		{`{"var": "email"}`, `"ann@example.com"`},
		{`{"var": ["user.address.city"]}`, `"Zürich"`},
		{`{"var": "user.tags.1"}`, `"b"`},
		{`{"var": "user.tags.01"}`, `null`},
		{`{"var": "user.tags.9"}`, `null`},
		{`{"var": ["nope", "dflt"]}`, `"dflt"`},
		{`{"var": ["n", "dflt"]}`, `"dflt"`},
		{`{"var": ["user.tags.x.y", 5]}`, `5`},
		{`{"var": "$flagd.flagKey"}`, `"f"`},
		{`{"var": "$flagd.timestamp"}`, `1700000000`},
		{`{"var": "$flagd"}`, `{"flagKey": "f", "timestamp": 1700000000}`},
		{`{"var": {"cat": ["us", "er.address.city"]}}`, `"Zürich"`},
		{`{"var": "targetingKey"}`, `"user-1"`},
		{`{"var": ""}`, `{"targetingKey": "user-1", "email": "ann@example.com", "age": 42, "n": null, "s": "",
		  "user": {"tags": ["a", "b"], "address": {"city": "Zürich"}}, "nums": [1, 2, 3, 4], "ver": "v1.2.3",
		  "$flagd": {"flagKey": "f", "timestamp": 1700000000}}`},
		// missing, missing_some
		{`{"missing": ["email", "nope", "n", "s"]}`, `["nope", "n", "s"]`},
		{`{"missing": [["age", "zz"]]}`, `["zz"]`},
		{`{"missing_some": [1, ["email", "nope"]]}`, `[]`},
		{`{"missing_some": [2, ["email", "nope"]]}`, `["nope"]`},
		// if
		{`{"if": [true, "a", "b"]}`, `"a"`},
		{`{"if": [false, "a", "b"]}`, `"b"`},
		{`{"if": [false, "a", 0, "b", "c"]}`, `"c"`},
		{`{"if": [false, "a", "0", "b", "c"]}`, `"b"`},
		{`{"if": [false, "a"]}`, `null`},
		{`{"if": []}`, `null`},
		{`{"?:": [[], "a", "b"]}`, `"b"`},
		// equality
		{`{"==": [1, "1"]}`, `true`},
		{`{"==": [0, ""]}`, `true`},
		{`{"==": [1, true]}`, `true`},
		{`{"==": ["1", true]}`, `true`},
		{`{"==": [null, 0]}`, `false`},
		{`{"==": [null, null]}`, `true`},
		{`{"==": [[], []]}`, `false`},
		{`{"===": [1, "1"]}`, `false`},
		{`{"===": [1, 1.0]}`, `true`},
		{`{"!=": [1, "2"]}`, `true`},
		{`{"!==": [1, "1"]}`, `true`},
		// truthiness
		{`{"!!": [[]]}`, `false`},
		{`{"!!": ["0"]}`, `true`},
		{`{"!!": [{}]}`, `false`},
		{`{"!!": [{"x": 1, "y": 2}]}`, `true`},
		{`{"!!": 0}`, `false`},
		{`{"!": [[]]}`, `true`},
		{`{"!": ""}`, `true`},
		// and/or return operands
		{`{"or": [0, "", "x", "y"]}`, `"x"`},
		{`{"or": [0, ""]}`, `""`},
		{`{"and": [1, "a", 0, "b"]}`, `0`},
		{`{"and": [1, "a"]}`, `"a"`},
		{`{"or": []}`, `null`},
		// comparisons
		{`{"<": [1, 2]}`, `true`},
		{`{"<": ["10", "9"]}`, `true`},
		{`{"<": ["10", 9]}`, `false`},
		{`{"<": [1, 2, 3]}`, `true`},
		{`{"<": [1, 3, 2]}`, `false`},
		{`{"<=": [1, 1, 3]}`, `true`},
		{`{">": [{"var": "age"}, 18]}`, `true`},
		{`{">=": ["a", "b"]}`, `false`},
		{`{"<": ["abc", 1]}`, `false`},
		{`{">": ["abc", 1]}`, `false`},
		{`{"<": [null, 1]}`, `true`},
		{`{"<": ["é", "z"]}`, `false`},
		// arithmetic
		{`{"+": [1, "2", 3.5]}`, `6.5`},
		{`{"+": []}`, `0`},
		{`{"+": "3.14"}`, `3.14`},
		{`{"+": [1, "x"]}`, `null`},
		{`{"+": [1, true]}`, `null`},
		{`{"+": [1, null]}`, `null`},
		{`{"-": [5, "2"]}`, `3`},
		{`{"-": 2}`, `-2`},
		{`{"-": [0]}`, `0`},
		{`{"*": [2, "3", 4]}`, `24`},
		{`{"/": [1, 4]}`, `0.25`},
		{`{"/": [1, 0]}`, `null`},
		{`{"%": [7, 3]}`, `1`},
		{`{"%": [-7, 3]}`, `-1`},
		{`{"%": [7.5, 2]}`, `1.5`},
		{`{"%": [7, 0]}`, `null`},
		{`{"min": [3, "1", 2]}`, `1`},
		{`{"max": [3, 1, 2]}`, `3`},
		{`{"max": []}`, `null`},
		{`{"*": [1e308, 10]}`, `null`},
		// in, cat, substr, merge
		{`{"in": ["Spring", "Springfield"]}`, `true`},
		{`{"in": [1, "a1"]}`, `true`},
		{`{"in": ["a", ["a", "b"]]}`, `true`},
		{`{"in": [1, ["1"]]}`, `false`},
		{`{"in": ["a", 5]}`, `false`},
		{`{"cat": ["a", 1, 1.5, true, null, [1, [2, null]]]}`, `"a11.5true1,2,"`},
		{`{"cat": [1e21, 0.000001, 1e-7]}`, `"1e+210.0000011e-7"`},
		{`{"substr": ["jsonlogic", 4]}`, `"logic"`},
		{`{"substr": ["jsonlogic", -5]}`, `"logic"`},
		{`{"substr": ["jsonlogic", 1, 3]}`, `"son"`},
		{`{"substr": ["jsonlogic", 4, -2]}`, `"log"`},
		{`{"substr": ["jsonlogic", 4, -9]}`, `""`},
		{`{"substr": ["Zürich", 1, 2]}`, `"ür"`},
		{`{"substr": ["abc", 10]}`, `""`},
		{`{"merge": [[1, 2], 3, [[4]]]}`, `[1, 2, 3, [4]]`},
		{`{"merge": []}`, `[]`},
		// map, filter, reduce, all, some, none
		{`{"map": [{"var": "nums"}, {"*": [{"var": ""}, 2]}]}`, `[2, 4, 6, 8]`},
		{`{"map": ["x", 1]}`, `[]`},
		{`{"filter": [{"var": "nums"}, {">": [{"var": ""}, 2]}]}`, `[3, 4]`},
		{`{"reduce": [{"var": "nums"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 10]}`, `20`},
		{`{"reduce": [{"var": "nope"}, {"+": [1, 2]}, 7]}`, `7`},
		{`{"all": [{"var": "nums"}, {">": [{"var": ""}, 0]}]}`, `true`},
		{`{"all": [[], true]}`, `false`},
		{`{"some": [{"var": "nums"}, {">": [{"var": ""}, 3]}]}`, `true`},
		{`{"none": [{"var": "nums"}, {">": [{"var": ""}, 4]}]}`, `true`},
		{`{"some": [{"var": "user.tags"}, {"==": [{"var": ""}, "b"]}]}`, `true`},
		// flagd string operators
		{`{"starts_with": [{"var": "email"}, "ann"]}`, `true`},
		{`{"ends_with": [{"var": "email"}, "@example.com"]}`, `true`},
		{`{"ends_with": [{"var": "age"}, "2"]}`, `null`},
		{`{"starts_with": [{"var": "nope"}, "a"]}`, `null`},
		// sem_ver
		{`{"sem_ver": [{"var": "ver"}, ">=", "1.2.0"]}`, `true`},
		{`{"sem_ver": ["1.2.3", "=", "v1.2.3+build.5"]}`, `true`},
		{`{"sem_ver": ["1.0.0-alpha", "<", "1.0.0"]}`, `true`},
		{`{"sem_ver": ["1.0.0-alpha", "<", "1.0.0-alpha.1"]}`, `true`},
		{`{"sem_ver": ["1.0.0-alpha.beta", "<", "1.0.0-beta"]}`, `true`},
		{`{"sem_ver": ["1.0.0-beta.2", "<", "1.0.0-beta.11"]}`, `true`},
		{`{"sem_ver": ["1.0.0-rc.1", ">", "1.0.0-beta.11"]}`, `true`},
		{`{"sem_ver": ["1.0.0-1", "<", "1.0.0-a"]}`, `true`},
		{`{"sem_ver": ["1.2", "=", "1.2.0"]}`, `true`},
		{`{"sem_ver": ["2", ">", "1.9.9"]}`, `true`},
		{`{"sem_ver": ["1.2-beta", "=", "1.2.0"]}`, `false`},
		{`{"sem_ver": ["1.2-beta", "=", "1.2.0-beta"]}`, `true`},
		{`{"sem_ver": ["1.2", "<", "1.2.1"]}`, `true`},
		{`{"sem_ver": ["1"]}`, `null`},
		{`{"sem_ver": ["1", "=", "1", "1"]}`, `null`},
		{`{"starts_with": ["abc"]}`, `null`},
		{`{"ends_with": ["abc", "c", "x"]}`, `null`},
		{`{">": [3, 2, 1]}`, `true`},
		{`{">": [3, 2, 5]}`, `false`},
		{`{">=": [3, 3, 3]}`, `true`},
		{`{"==": [1, 1, 2]}`, `true`},
		{`{"!": [false, true]}`, `true`},
		{`{"-": [10, 3, 2]}`, `5`},
		{`{"/": [12, 3, 2]}`, `2`},
		{`{"/": [12, 0, 2]}`, `null`},
		{`{"-": [1e308, -1e308, 1]}`, `null`},
		{`{"%": [7, 3, 5]}`, `1`},
		{`{"sem_ver": ["01.2.3", "=", "1.2.3"]}`, `null`},
		{`{"sem_ver": ["1.2.3-01", "=", "1.2.3"]}`, `null`},
		{`{"sem_ver": ["not", "=", "1.2.3"]}`, `null`},
		{`{"sem_ver": ["1.2.3", "==", "1.2.3"]}`, `null`},
		{`{"sem_ver": [1, "=", "1.0.0"]}`, `true`},
		{`{"sem_ver": [true, "=", "1.0.0"]}`, `null`},
		{`{"sem_ver": ["18446744073709551616.0.0", ">", "18446744073709551615.9.9"]}`, `true`},
		{`{"sem_ver": ["1.9.0", "^", "1.2.3"]}`, `true`},
		{`{"sem_ver": ["2.0.0", "^", "1.2.3"]}`, `false`},
		{`{"sem_ver": ["1.2.9", "~", "1.2.3"]}`, `true`},
		{`{"sem_ver": ["1.3.0", "~", "1.2.3"]}`, `false`},
		{`{"sem_ver": ["1.2.3", "!=", "1.2.4"]}`, `true`},
		{`{"sem_ver": ["V1.2.3", "<=", "1.2.3"]}`, `true`},
		{`{"sem_ver": ["1.2.3", {"cat": [">", "="]}, {"var": "ver"}]}`, `true`},
		{`{"sem_ver": ["1.2.3", "=", "x"]}`, `null`},
		{`{"sem_ver": [{"var": "ver"}, "?", "1.0.0"]}`, `null`},
		// literals
		{`{"a": 1, "b": 2}`, `{"a": 1, "b": 2}`},
		{`[1, {"var": "age"}]`, `[1, 42]`},
	}
	for _, c := range cases {
		got := evalRule(t, c.rule, ctx)
		var want any
		if err := json.Unmarshal([]byte(c.want), &want); err != nil {
			t.Fatalf("want %s: %v", c.want, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %s", c.rule, got, c.want)
		}
	}
}

func TestFractional(t *testing.T) {
	rule := `{"fractional": [["red", 50], ["blue", 30], ["green", 20]]}`
	counts := map[any]int{}
	for i := 0; i < 10000; i++ {
		ctx := `{"targetingKey": "user-` + itoa(i) + `"}`
		counts[evalRule(t, rule, ctx)]++
	}
	// Murmur3 spreads well: each share within 3 percentage points of its weight.
	for v, want := range map[string]int{"red": 5000, "blue": 3000, "green": 2000} {
		if got := counts[v]; got < want-300 || got > want+300 {
			t.Errorf("%s: %d of 10000, want about %d (%v)", v, got, want, counts)
		}
	}
	// Known answers computed by hand from the documented algorithm:
	// bucket key "f"+"user-1" → Murmur3, × total, >> 32.
	key := "fuser-1"
	h := uint64(murmur3([]byte(key)))
	bucket := h * 100 >> 32
	wantVariant := "green"
	switch {
	case bucket < 50:
		wantVariant = "red"
	case bucket < 80:
		wantVariant = "blue"
	}
	if got := evalRule(t, rule, `{"targetingKey": "user-1"}`); got != wantVariant {
		t.Errorf("user-1: got %v, want %v (bucket %d)", got, wantVariant, bucket)
	}

	cases := []struct{ rule, ctx, want string }{
		// no targetingKey → null
		{rule, `{}`, `null`},
		{rule, `{"targetingKey": 5}`, `null`},
		// explicit bucketing key: murmur3("hello") = 613153351; ×2 >> 32 = 0 → first entry
		{`{"fractional": ["hello", ["a", 1], ["b", 1]]}`, `{}`, `"a"`},
		// murmur3("abc") = 3017643002; ×2 >> 32 = 1 → second entry
		{`{"fractional": ["abc", ["a", 1], ["b", 1]]}`, `{}`, `"b"`},
		// weight defaults to 1; computed variant names and weights
		{`{"fractional": ["abc", ["a"], [{"cat": ["b"]}, {"+": [0, 1]}]]}`, `{}`, `"b"`},
		// non-string bucketing value → flagKey+targetingKey; missing targetingKey → null
		{`{"fractional": [{"var": "nope"}, ["a", 1], ["b", 1]]}`, `{}`, `null`},
		{`{"fractional": [{"var": "email"}, ["a", 1]]}`, `{"targetingKey": "x"}`, `"a"`},
		// zero/negative weights
		{`{"fractional": ["abc", ["a", 0], ["b", -5]]}`, `{}`, `null`},
		{`{"fractional": ["abc", ["a", -1], ["b", 2]]}`, `{}`, `null`},
		{`{"fractional": ["abc", ["a", 1], ["b", 2.9]]}`, `{}`, `null`},
		{`{"fractional": ["abc", ["a", null], ["b", 0, "x"]]}`, `{}`, `"a"`},
		{`{"fractional": [["a", 1]]}`, `{"targetingKey": ""}`, `null`},
		{`{"fractional": [5, ["a", 1]]}`, `{"targetingKey": "u"}`, `null`},
		{`{"fractional": [null, ["a", 1]]}`, `{"targetingKey": "u"}`, `"a"`},
		{`{"fractional": []}`, `{"targetingKey": "u"}`, `null`},
		// malformed entries, too large total
		{`{"fractional": ["abc", "a"]}`, `{}`, `null`},
		{`{"fractional": ["abc", [1, 1]]}`, `{}`, `1`},
		{`{"fractional": ["abc", [true, 1]]}`, `{}`, `true`},
		{`{"fractional": ["abc", [null, 1]]}`, `{}`, `null`},
		{`{"fractional": ["abc", [[1], 1]]}`, `{}`, `null`},
		{`{"fractional": ["abc", ["a", "1"]]}`, `{}`, `null`},
		{`{"fractional": ["abc", ["a", 2147483647], ["b", 1]]}`, `{}`, `null`},
		{`{"fractional": ["abc"]}`, `{}`, `null`},
	}
	for _, c := range cases {
		got := evalRule(t, c.rule, c.ctx)
		var want any
		_ = json.Unmarshal([]byte(c.want), &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s on %s = %#v, want %s", c.rule, c.ctx, got, c.want)
		}
	}
}

func itoa(i int) string { return FormatNumber(float64(i)) }

func TestCompileProblems(t *testing.T) {
	cases := []struct{ rule, want string }{
		{`{"nope": [1]}`, `unknown operator "nope"`},
		{`{"if": [{"and": [{"bad": 1}]}]}`, `unknown operator "bad" (at if[0].and[0])`},
		{`{"==": [1]}`, `operator "==" takes 2 arguments, got 1`},
		{`{"!": []}`, `operator "!" takes 1 argument, got 0`},
		{`{"substr": ["a"]}`, `operator "substr" takes 2 to 3 arguments, got 1`},
		{`{"var": ["a", 1, 2]}`, `operator "var" takes 0 to 2 arguments, got 3`},
		{`{"$ref": "missing"}`, `$ref "missing": no such evaluator`},
		{`{"$ref": 5}`, `$ref must name an evaluator (a string), got number`},
		{`{"$ref": "loop_a"}`, `$ref "loop_a": evaluator is invalid: $ref "loop_b": evaluator is invalid: $ref "loop_a" is cyclic (at if[1])`},
		{`"on"`, `must be a JsonLogic object, got string`},
	}
	evaluators := map[string]json.RawMessage{
		"loop_a": json.RawMessage(`{"$ref": "loop_b"}`),
		"loop_b": json.RawMessage(`{"if": [true, {"$ref": "loop_a"}]}`),
	}
	for _, c := range cases {
		_, errs := newRuleCompiler(evaluators).compileTargeting(&Flag{Targeting: json.RawMessage(c.rule)})
		if len(errs) != 1 || errs[0] != c.want {
			t.Errorf("%s: problems %q, want [%q]", c.rule, errs, c.want)
		}
	}
}
