package flagset

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

const basicDoc = `{
  "$schema": "https://example.invalid/schema.json",
  "flags": {
    "new_dashboard": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", null]},
      "metadata": {"owner": "team-a"}
    },
    "color": {
      "state": "ENABLED",
      "variants": {"red": "#f00", "blue": "#00f"},
      "defaultVariant": "red"
    },
    "off_flag": {"state": "DISABLED", "variants": {"a": 1}, "defaultVariant": "a"},
    "no_default": {"state": "ENABLED", "variants": {"a": 1.5}},
    "limit": {"state": "ENABLED", "variants": {"three": 3, "half": 3.5}, "defaultVariant": "three",
      "targeting": {"if": [{"==": [{"var": "tier"}, "pro"]}, "half", null]}},
    "cfg": {"state": "ENABLED", "variants": {"x": {"a": [1, 2]}}, "defaultVariant": "x"}
  },
  "metadata": {"flagSetId": "test", "owner": "set-owner"}
}`

func mustLoad(t *testing.T, doc string) *Set {
	t.Helper()
	s, ps, err := Load([]byte(doc))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(ps) > 0 {
		t.Fatalf("Load problems: %v", ps)
	}
	return s
}

func TestEvaluateReasons(t *testing.T) {
	s := mustLoad(t, basicDoc)
	type want struct {
		value   any
		variant string
		reason  Reason
		code    ErrorCode
	}
	cases := []struct {
		name string
		key  string
		typ  Type
		def  any
		ctx  map[string]any
		want want
	}{
		{"static", "color", TypeString, "zz", nil, want{"#f00", "red", ReasonStatic, CodeNone}},
		{"match", "new_dashboard", TypeBoolean, false, map[string]any{"email": "a@example.com"}, want{true, "on", ReasonTargetingMatch, CodeNone}},
		{"rule null -> default", "new_dashboard", TypeBoolean, true, map[string]any{"email": "a@other.com"}, want{false, "off", ReasonDefault, CodeNone}},
		{"disabled", "off_flag", TypeInteger, int64(7), nil, want{int64(7), "", ReasonDisabled, CodeNone}},
		{"not found", "nope", TypeBoolean, true, nil, want{true, "", ReasonError, CodeFlagNotFound}},
		{"no default variant", "no_default", TypeFloat, 9.0, nil, want{9.0, "", ReasonDefault, CodeNone}},
		{"type mismatch", "color", TypeBoolean, true, nil, want{true, "", ReasonError, CodeTypeMismatch}},
		{"integer from 3", "limit", TypeInteger, int64(0), nil, want{int64(3), "three", ReasonDefault, CodeNone}},
		{"integer from 3.5", "limit", TypeInteger, int64(0), map[string]any{"tier": "pro"}, want{int64(0), "", ReasonError, CodeTypeMismatch}},
		{"float from 3.5", "limit", TypeFloat, 0.0, map[string]any{"tier": "pro"}, want{3.5, "half", ReasonTargetingMatch, CodeNone}},
		{"float from int", "limit", TypeFloat, 0.0, nil, want{3.0, "three", ReasonDefault, CodeNone}},
		{"object", "cfg", TypeObject, nil, nil, want{map[string]any{"a": []any{1.0, 2.0}}, "x", ReasonStatic, CodeNone}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.EvaluateAt(c.key, c.typ, c.def, c.ctx, 1700000000)
			got := want{r.Value, r.Variant, r.Reason, r.ErrorCode}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v, want %+v (msg %q)", got, c.want, r.ErrorMessage)
			}
			if r.Metadata == nil || r.Metadata["flagSetId"] != "test" {
				t.Fatalf("metadata = %v, want flag-set metadata", r.Metadata)
			}
		})
	}
}

func TestMetadataMerge(t *testing.T) {
	s := mustLoad(t, basicDoc)
	r := s.Evaluate("new_dashboard", TypeBoolean, false, nil)
	if r.Metadata["owner"] != "team-a" || r.Metadata["flagSetId"] != "test" {
		t.Fatalf("flag metadata must win over set metadata: %v", r.Metadata)
	}
	r = s.Evaluate("color", TypeString, "", nil)
	if r.Metadata["owner"] != "set-owner" {
		t.Fatalf("set metadata missing: %v", r.Metadata)
	}
	r = s.Evaluate("unknown", TypeString, "", nil)
	if r.Metadata["flagSetId"] != "test" {
		t.Fatalf("unknown flag must carry set metadata: %v", r.Metadata)
	}
}

func TestProblemMessages(t *testing.T) {
	doc := `{"flags": {
	  "new_dashboard": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "onn"},
	  "bad state": {"state": "ON", "variants": {"a": 1}},
	  "mixed": {"state": "ENABLED", "variants": {"a": 1, "b": "x"}},
	  "ops": {"state": "ENABLED", "variants": {"a": "a"}, "targeting": {"nope": [1]}}
	}}`
	s, ps, err := Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, p := range ps {
		msgs = append(msgs, p.Error())
	}
	want := []string{
		`flags.bad state: invalid flag key "bad state": use letters, digits and _ - . / : only`,
		`flags.bad state.state: "ON" is not a state (want ENABLED or DISABLED)`,
		`flags.mixed.variants: values must all have one type, found number (a) and string (b)`,
		`flags.new_dashboard.defaultVariant: "onn" is not a variant (have: off, on)`,
		`flags.ops.targeting: unknown operator "nope"`,
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
	// Structurally bad flags are left out; a flag with bad targeting stays and yields PARSE_ERROR.
	if got := s.Keys(); !reflect.DeepEqual(got, []string{"ops"}) {
		t.Fatalf("keys = %v", got)
	}
	r := s.Evaluate("ops", TypeString, "d", nil)
	if r.Reason != ReasonError || r.ErrorCode != CodeParseError || r.Value != "d" {
		t.Fatalf("got %+v", r)
	}
}

func TestMurmur3KnownAnswers(t *testing.T) {
	cases := map[string]uint32{
		"":      0,
		"hello": 613153351,
		// Reference values of MurmurHash3_x86_32 with seed 0.
		"a":    1009084850,
		"abc":  3017643002,
		"abcd": 1139631978,
		"The quick brown fox jumps over the lazy dog": 776992547,
	}
	for in, want := range cases {
		if got := murmur3([]byte(in)); got != want {
			t.Errorf("Murmur3(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestMurmur3Vectors checks the hash against the conformance vectors every
// reader (Go, Python, flagd) is held to.
func TestMurmur3Vectors(t *testing.T) {
	data, err := os.ReadFile("../conformance/vectors/murmur3.json")
	if err != nil {
		t.Fatal(err)
	}
	var vecs []struct {
		Input string `json:"input"`
		Hash  uint32 `json:"hash"`
	}
	if err := json.Unmarshal(data, &vecs); err != nil {
		t.Fatal(err)
	}
	if len(vecs) < 30 {
		t.Fatalf("%d vectors, want >= 30", len(vecs))
	}
	for _, v := range vecs {
		if got := murmur3([]byte(v.Input)); got != v.Hash {
			t.Errorf("murmur3(%q) = %d, want %d", v.Input, got, v.Hash)
		}
	}
}

func TestEvaluateRuleResults(t *testing.T) {
	s, ps, err := Load([]byte(`{"$evaluators":{"is_ch":{"==":[{"var":"country"},"CH"]},"nested":{"and":[{"$ref":"is_ch"},{">=":[{"var":"age"},18]}]}},
	"flags":{
	  "bool_result":{"state":"ENABLED","variants":{"true":"yes","false":"no"},"defaultVariant":"false","targeting":{"$ref":"nested"}},
	  "number_result":{"state":"ENABLED","variants":{"a":1},"defaultVariant":"a","targeting":{"+":[1,2]}},
	  "unknown_variant":{"state":"ENABLED","variants":{"a":1},"defaultVariant":"a","targeting":{"cat":["b"]}},
	  "missing_ref":{"state":"ENABLED","variants":{"a":1},"defaultVariant":"a","targeting":{"$ref":"nope"}},
	  "time":{"state":"ENABLED","variants":{"old":"o","new":"n"},"defaultVariant":"old","targeting":{"if":[{">=":[{"var":"$flagd.timestamp"},1800000000]},"new",null]}},
	  "own_key":{"state":"ENABLED","variants":{"own_key":true,"x":false},"defaultVariant":"x","targeting":{"var":"$flagd.flagKey"}},
	  "zürich/ß:1":{"state":"ENABLED","variants":{"grüezi":"Grüezi ☀"},"defaultVariant":"grüezi"},
	  "zero":{"state":"ENABLED","variants":{"f":false,"t":true},"defaultVariant":"f"},
	  "no_default_targeting":{"state":"ENABLED","variants":{"a":"A"},"targeting":{"if":[{"var":"x"},"a",null]}}
	}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Path != "flags.missing_ref.targeting" || ps[0].Message != `$ref "nope": no such evaluator` {
		t.Fatalf("problems = %v", ps)
	}
	cases := []struct {
		name, key string
		typ       Type
		ctx       map[string]any
		now       int64
		value     any
		variant   string
		reason    Reason
		code      ErrorCode
	}{
		{"nested $ref true", "bool_result", TypeString, map[string]any{"country": "CH", "age": 30}, 0, "yes", "true", ReasonTargetingMatch, CodeNone},
		{"nested $ref false", "bool_result", TypeString, map[string]any{"country": "CH", "age": 3}, 0, "no", "false", ReasonTargetingMatch, CodeNone},
		{"number result", "number_result", TypeInteger, nil, 0, "dflt", "", ReasonError, CodeGeneral},
		{"unknown variant", "unknown_variant", TypeInteger, nil, 0, "dflt", "", ReasonError, CodeGeneral},
		{"missing $ref", "missing_ref", TypeInteger, nil, 0, "dflt", "", ReasonError, CodeParseError},
		{"timestamp before", "time", TypeString, nil, 1700000000, "o", "old", ReasonDefault, CodeNone},
		{"timestamp after", "time", TypeString, nil, 1900000000, "n", "new", ReasonTargetingMatch, CodeNone},
		{"flagKey", "own_key", TypeBoolean, nil, 0, true, "own_key", ReasonTargetingMatch, CodeNone},
		{"unicode key", "zürich/ß:1", TypeString, nil, 0, "Grüezi ☀", "grüezi", ReasonStatic, CodeNone},
		{"false value", "zero", TypeBoolean, nil, 0, false, "f", ReasonStatic, CodeNone},
		{"null without defaultVariant", "no_default_targeting", TypeString, nil, 0, "dflt", "", ReasonDefault, CodeNone},
		{"match without defaultVariant", "no_default_targeting", TypeString, map[string]any{"x": 1}, 0, "A", "a", ReasonTargetingMatch, CodeNone},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.EvaluateAt(c.key, c.typ, "dflt", c.ctx, c.now)
			if r.Value != c.value || r.Variant != c.variant || r.Reason != c.reason || r.ErrorCode != c.code {
				t.Fatalf("got %+v", r)
			}
			if (c.code != CodeNone) != (r.ErrorMessage != "") {
				t.Fatalf("error message %q for code %q", r.ErrorMessage, c.code)
			}
		})
	}
	// Evaluate uses the current time.
	if r := s.Evaluate("time", TypeString, "", nil); r.Variant != "old" {
		t.Fatalf("Evaluate now: %+v", r)
	}
}

func TestContextGoTypes(t *testing.T) {
	s := mustLoad(t, `{"flags":{"f":{"state":"ENABLED","variants":{"y":true,"n":false},"defaultVariant":"n",
	  "targeting":{"if":[{"and":[{">":[{"var":"n"},2]},{"in":["b",{"var":"tags"}]},{"==":[{"var":"m.k"},"v"]}]},"y","n"]}}}}`)
	ctx := map[string]any{"n": int64(3), "tags": []string{"a", "b"}, "m": map[string]string{"k": "v"}}
	if r := s.Evaluate("f", TypeBoolean, false, ctx); r.Value != true {
		t.Fatalf("got %+v", r)
	}
}

func TestConcurrentEvaluate(t *testing.T) {
	s := mustLoad(t, benchDoc)
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 500; i++ {
				ctx := map[string]any{"targetingKey": itoa(i), "email": "a@example.com", "appVersion": "2.5.0"}
				for _, k := range s.Keys() {
					if r := s.Evaluate(k, TypeBoolean, false, ctx); r.Metadata == nil {
						t.Error("nil metadata")
						return
					}
				}
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}

func TestGoBuiltDocument(t *testing.T) {
	on := "on"
	d := &Document{
		Flags: map[string]*Flag{
			"env.flag": {State: Enabled, Variants: map[string]any{"on": true, "off": false}, DefaultVariant: &on,
				Metadata: map[string]any{MetaSource: "env", "weight": 3}},
			"ints": {State: Enabled, Variants: map[string]any{"a": 1, "b": int64(2), "c": float32(1.5)}, DefaultVariant: strPtr("b"),
				Targeting: []byte(`{"if": [{"==": [{"var": "x"}, 1]}, "a", null]}`)},
			"bad": {State: "on", Variants: map[string]any{"x": []int{1}}},
		},
		Metadata: map[string]any{MetaFlagSetID: "go", MetaGeneration: int64(12)},
	}
	ps := d.Validate()
	if len(ps) != 2 || ps[0].Flag != "bad" || ps[1].Path != "flags.bad.variants.x" {
		t.Fatalf("problems: %v", ps)
	}
	if !strings.Contains(ps.Error(), "\n") {
		t.Fatalf("Problems.Error joins lines: %q", ps.Error())
	}
	s, _ := Compile(d)
	if s.Len() != 2 || s.Metadata()[MetaFlagSetID] != "go" || s.Generation() != 12 {
		t.Fatalf("set: len %d meta %v gen %d", s.Len(), s.Metadata(), s.Generation())
	}
	if r := s.Evaluate("ints", TypeInteger, int64(0), map[string]any{"x": 1}); r.Value != int64(1) || r.Variant != "a" {
		t.Fatalf("got %+v", r)
	}
	if r := s.Evaluate("ints", TypeInteger, int64(0), nil); r.Value != int64(2) {
		t.Fatalf("got %+v", r)
	}
	if r := s.Evaluate("env.flag", TypeBoolean, false, nil); r.Value != true || r.Metadata["weight"] != 3.0 {
		t.Fatalf("got %+v", r)
	}
	b, err := canonicalDocument(s.Document())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"flags":{"env.flag":{"defaultVariant":"on","metadata":{"source":"env","weight":3},"state":"ENABLED","variants":{"off":false,"on":true}},` +
		`"ints":{"defaultVariant":"b","state":"ENABLED","targeting":{"if":[{"==":[{"var":"x"},1]},"a",null]},"variants":{"a":1,"b":2,"c":1.5}}},` +
		`"metadata":{"flagSetId":"go","flagsync.generation":12}}`
	if string(b) != want {
		t.Fatalf("canonical:\n got %s\nwant %s", b, want)
	}
	// The revision of a Set equals Revision of its document.
	if rev, _ := documentRevision(s.Document()); rev != s.Revision() {
		t.Fatalf("Set.Revision %s != documentRevision(doc) %s", s.Revision(), rev)
	}
}

func strPtr(s string) *string { return &s }

func TestEqualityTables(t *testing.T) {
	vals := []any{nil, true, false, 0.0, 1.0, "", "0", "1", "a", []any{}, map[string]any{}}
	// Expected JS loose equality (==) for each pair, by index, for the pairs that are true.
	looseTrue := map[[2]int]bool{
		{0, 0}: true, {1, 1}: true, {1, 4}: true, {1, 7}: true, {2, 2}: true, {2, 3}: true, {2, 5}: true, {2, 6}: true,
		{3, 3}: true, {3, 5}: true, {3, 6}: true, {4, 4}: true, {4, 7}: true, {5, 5}: true, {6, 6}: true, {7, 7}: true, {8, 8}: true,
	}
	for i, a := range vals {
		for j, b := range vals {
			want := looseTrue[[2]int{i, j}] || looseTrue[[2]int{j, i}]
			if got := looseEq(a, b); got != want {
				t.Errorf("%#v == %#v: got %v want %v", a, b, got, want)
			}
			strict := i == j && i < 9
			if got := strictEq(a, b); got != strict {
				t.Errorf("%#v === %#v: got %v want %v", a, b, got, strict)
			}
		}
	}
}

func TestNormalize(t *testing.T) {
	type named string
	cases := []struct{ in, want any }{
		{int8(3), 3.0}, {uint16(4), 4.0}, {uint64(5), 5.0}, {float32(0.5), 0.5}, {json.Number("2.5"), 2.5},
		{[]int{1, 2}, []any{1.0, 2.0}}, {map[string]int{"a": 1}, map[string]any{"a": 1.0}}, {named("x"), "x"},
		{struct{}{}, nil}, {map[int]int{1: 1}, nil},
	}
	for _, c := range cases {
		if got := normalize(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("normalize(%#v) = %#v, want %#v", c.in, got, c.want)
		}
	}
}

func TestExponentialRefs(t *testing.T) {
	ev := map[string]json.RawMessage{"e0": json.RawMessage(`{"==": [{"var": "x"}, 1]}`)}
	for i := 1; i <= 40; i++ {
		prev := "e" + itoa(i-1)
		ev["e"+itoa(i)] = json.RawMessage(`{"or": [{"$ref": "` + prev + `"}, {"$ref": "` + prev + `"}]}`)
	}
	d := &Document{Evaluators: ev, Flags: map[string]*Flag{
		"f": {State: Enabled, Variants: map[string]any{"true": 1, "false": 0}, Targeting: json.RawMessage(`{"$ref": "e40"}`)},
	}}
	s, ps := Compile(d)
	found := false
	for _, p := range ps {
		if p.Path == "flags.f.targeting" && strings.Contains(p.Message, "too large") {
			found = true
		}
	}
	if !found {
		t.Fatalf("want a too-large problem, got %v", ps)
	}
	if r := s.Evaluate("f", TypeInteger, int64(9), map[string]any{"x": 2}); r.ErrorCode != CodeParseError {
		t.Fatalf("got %+v", r)
	}
}

func TestSetIsImmutable(t *testing.T) {
	d, err := Parse([]byte(`{"flags":{"a":{"state":"ENABLED","variants":{"on":true},"defaultVariant":"on"}},"metadata":{"flagSetId":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := Compile(d)
	before, _ := canonicalDocument(s.Document())
	d.Flags["a"].State = Disabled
	d.Metadata["flagSetId"] = "changed"
	after, _ := canonicalDocument(s.Document())
	if string(before) != string(after) {
		t.Fatalf("changing the input document changed the Set's document:\n%s\n%s", before, after)
	}
	if r := s.Evaluate("a", TypeBoolean, false, nil); r.Reason != ReasonStatic {
		t.Fatalf("got %+v", r)
	}
}

func TestNilSet(t *testing.T) {
	var s *Set
	if r := s.Evaluate("x", TypeBoolean, true, nil); r.ErrorCode != CodeFlagNotFound || r.Value != true {
		t.Fatalf("got %+v", r)
	}
	if s.Len() != 0 || s.Keys() != nil {
		t.Fatal("nil set must be empty")
	}
}

func TestParallelCompileMatchesSequential(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"$evaluators":{"ch":{"==":[{"var":"country"},"CH"]}},"flags":{`)
	for i := 0; i < 3000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		k := "f" + itoa(i)
		switch i % 5 {
		case 0:
			b.WriteString(`"` + k + `":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off","targeting":{"if":[{"$ref":"ch"},"on",null]}}`)
		case 1:
			b.WriteString(`"` + k + `":{"state":"ENABLED","variants":{"a":1,"b":"x"}}`) // mixed types
		case 2:
			b.WriteString(`"` + k + `":{"state":"ENABLED","variants":{"a":1},"targeting":{"$ref":"nope"}}`)
		default:
			b.WriteString(`"` + k + `":{"state":"DISABLED","variants":{"a":"A","b":"B"},"defaultVariant":"a","metadata":{"owner":"o` + itoa(i%3) + `"}}`)
		}
	}
	b.WriteString(`}}`)
	d, err := Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	par, parProblems := Compile(d)
	old := parallelCompileMin
	parallelCompileMin = 1 << 30
	seq, seqProblems := Compile(d)
	parallelCompileMin = old
	if !reflect.DeepEqual(parProblems, seqProblems) || len(seqProblems) != 1200 {
		t.Fatalf("problems differ or wrong count: %d vs %d", len(parProblems), len(seqProblems))
	}
	if par.Revision() != seq.Revision() || !reflect.DeepEqual(par.Keys(), seq.Keys()) || par.Len() != 2400 {
		t.Fatalf("sets differ: %s/%s, %d/%d flags", par.Revision(), seq.Revision(), par.Len(), seq.Len())
	}
	if rev, _ := documentRevision(par.Document()); rev != par.Revision() {
		t.Fatalf("revision %s, documentRevision(doc) %s", par.Revision(), rev)
	}
	if added, removed, changed := Diff(seq, par); added != nil || removed != nil || changed != nil {
		t.Fatalf("Diff(seq, par) = %v %v %v", added, removed, changed)
	}
	if r := par.Evaluate("f0", TypeBoolean, false, map[string]any{"country": "CH"}); r.Value != true {
		t.Fatalf("got %+v", r)
	}
}

// TestTargetingNullAndBareString: both break the JSON schema (targeting is an
// object), so the conformance suite cannot hold them; docs/FORMAT.md "Differences
// from flagd" pins them here and in Python.
func TestTargetingNullAndBareString(t *testing.T) {
	set, problems, err := Load([]byte(`{"flags": {
	  "n": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off", "targeting": null},
	  "s": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off", "targeting": "on"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || problems[0].Path != "flags.s.targeting" {
		t.Errorf("problems = %v, want one at flags.s.targeting", problems)
	}
	if r := set.Evaluate("n", TypeBoolean, true, nil); r.Value != false || r.Variant != "off" || r.Reason != ReasonStatic {
		t.Errorf("null targeting: %+v, want off STATIC", r)
	}
	if r := set.Evaluate("s", TypeBoolean, false, nil); r.Reason != ReasonError || r.ErrorCode != CodeParseError {
		t.Errorf("bare string targeting: %+v, want PARSE_ERROR", r)
	}
}

// TestValidFlagKeyFixedTable: key validity comes from the pinned Unicode 15.0.0
// table (shared with Python), not from the runtime's Unicode version.
func TestValidFlagKeyFixedTable(t *testing.T) {
	for key, want := range map[string]bool{
		"\U00011F04": true, "kawi_\U00011F04": true, "\U0001E4F0": true, "٣": true, "ǅ": true, "日本": true,
		"a.b/c:d_e-f": true, "x\u0301": false, "Ⅻ": false, "x\u200d": false, "\U0001FAF8": false, "a b": false,
		"": false, "é": true, "\U000E0001": false, "\U00031350": true, "\U0002EBF0": false,
	} {
		if got := ValidFlagKey(key); got != want {
			t.Errorf("ValidFlagKey(%q) = %v, want %v", key, got, want)
		}
	}
}

// TestInvalidRefsMessagesStaySmall: evaluators referring twice to an invalid one,
// 40 levels over, are all invalid, and their messages grow linearly, not doubling
// per level (a $ref message names the evaluator's first problem only).
func TestInvalidRefsMessagesStaySmall(t *testing.T) {
	ev := map[string]json.RawMessage{"b0": json.RawMessage(`{"or": [{"nope": 1}, {"nope2": 2}]}`)}
	for i := 1; i <= 40; i++ {
		prev := "b" + itoa(i-1)
		ev["b"+itoa(i)] = json.RawMessage(`{"or": [{"$ref": "` + prev + `"}, {"$ref": "` + prev + `"}]}`)
	}
	d := &Document{Evaluators: ev, Flags: map[string]*Flag{
		"g": {State: Enabled, Variants: map[string]any{"a": 1}, Targeting: json.RawMessage(`{"$ref": "b40"}`)},
	}}
	s, ps := Compile(d)
	evaluatorProblems := 0
	for _, p := range ps {
		if strings.HasPrefix(p.Path, "$evaluators.") {
			evaluatorProblems++
		}
		if len(p.Message) > 20_000 {
			t.Fatalf("%s: message of %d bytes", p.Path, len(p.Message))
		}
	}
	if evaluatorProblems != 82 { // two $refs each, b0 two unknown operators
		t.Errorf("%d evaluator problems, want 82", evaluatorProblems)
	}
	if r := s.Evaluate("g", TypeInteger, int64(7), nil); r.ErrorCode != CodeParseError {
		t.Fatalf("got %+v", r)
	}
}
