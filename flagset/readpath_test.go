package flagset

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"testing"
)

// TestReaderSetEncodesOnlyWhenAsked: Compile (a reader's reload) writes no
// canonical encoding; Revision and Canonical compute it on first use and agree
// with the publishing path.
func TestReaderSetEncodesOnlyWhenAsked(t *testing.T) {
	doc, err := Parse([]byte(stampDoc))
	if err != nil {
		t.Fatal(err)
	}
	read, _ := Compile(doc)
	if read.body != nil || read.revision != "" || read.lazyRev == nil {
		t.Fatalf("Compile encoded the flags: body %d blocks, revision %q", len(read.body), read.revision)
	}
	// A set derived before the revision was asked for still reports the base's.
	derived := read.WithMetadata(map[string]any{MetaFlagSetID: "other", MetaGeneration: float64(4)})
	want, err := documentRevision(read.Document())
	if err != nil {
		t.Fatal(err)
	}
	if derived.Revision() != want || read.Revision() != want {
		t.Errorf("revision: derived %s, base %s, want %s", derived.Revision(), read.Revision(), want)
	}
	// The publishing compile of the same document (the broken flag left out)
	// encodes while compiling, and a reader's set of what it published agrees.
	pub, _ := CompileStrict(doc)
	if pub.body == nil || pub.revision == "" {
		t.Fatal("CompileStrict did not encode the flags")
	}
	out, err := pub.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	again, problems, err := Load(out)
	if err != nil || len(problems) > 0 {
		t.Fatal(err, problems)
	}
	if b, err := again.Canonical(); err != nil || string(b) != string(out) {
		t.Errorf("reader's Canonical:\n got %s\nwant %s (err %v)", b, out, err)
	}
	if again.Revision() != pub.Revision() {
		t.Errorf("reader's revision %s, published %s", again.Revision(), pub.Revision())
	}
	// metadata.version is the revision: nothing is encoded for it.
	versioned, _, err := Load([]byte(`{"flags":{},"metadata":{"version":"v7"}}`))
	if err != nil || versioned.Revision() != "v7" || versioned.lazyRev != nil {
		t.Errorf("versioned: %q %v", versioned.Revision(), err)
	}
}

// TestDiffIsCanonicalEquality: Diff calls a flag changed exactly when its
// canonical encoding changed, for flags parsed and flags built in Go.
func TestDiffIsCanonicalEquality(t *testing.T) {
	on, off, empty := "on", "off", ""
	flag := func(edit func(f *Flag)) *Flag {
		f := &Flag{State: Enabled, Variants: map[string]any{"on": map[string]any{"n": 1.0, "s": []any{"a", 2.0}}, "off": map[string]any{}},
			DefaultVariant: &on, Metadata: map[string]any{MetaOwner: "a", "rank": 1.0},
			Targeting: json.RawMessage(`{"if":[{"==":[{"var":"x"},{"k":{"in":[1,2]},"j":true}]},"on","off"]}`)}
		if edit != nil {
			edit(f)
		}
		return f
	}
	variants := []func(f *Flag){
		nil,
		func(f *Flag) { f.State = Disabled },
		func(f *Flag) { f.DefaultVariant = &off },
		func(f *Flag) { f.DefaultVariant = nil },
		func(f *Flag) { f.DefaultVariant = &empty },
		func(f *Flag) { f.Variants["on"] = map[string]any{"n": 1, "s": []any{"a", int64(2)}} }, // same numbers
		func(f *Flag) { f.Variants["on"] = map[string]any{"n": 1.5, "s": []any{"a", 2.0}} },
		func(f *Flag) { f.Variants["on"] = map[string]any{"n": 1.0, "s": []any{2.0, "a"}} },
		func(f *Flag) { f.Variants["on"] = map[string]any{"n": math.Copysign(0, -1), "s": []any{"a", 2.0}} },
		func(f *Flag) { f.Variants["off"] = map[string]any{"m": nil} },
		func(f *Flag) { f.Metadata["rank"] = 2 },
		func(f *Flag) { f.Metadata["rank"] = "1" },
		func(f *Flag) { delete(f.Metadata, "rank"); f.Metadata["rang"] = 1.0 },
		func(f *Flag) { f.Metadata = nil },
		func(f *Flag) { // the same rule written differently
			f.Targeting = json.RawMessage(` { "if" : [ {"==":[{"var":"x"},{"j":true,"k":{"in":[1.0,2e0]}}]}, "on", "off" ] } `)
		},
		func(f *Flag) {
			f.Targeting = json.RawMessage(`{"if":[{"==":[{"var":"y"},{"k":{"in":[1,2]},"j":true}]},"on","off"]}`)
		},
		func(f *Flag) {
			f.Targeting = json.RawMessage(`{"if":[{"==":[{"var":"x"},{"k":{"in":[1,2]},"j":false}]},"on","off"]}`)
		},
		func(f *Flag) { f.Targeting = nil },
		func(f *Flag) { f.Targeting = json.RawMessage(`{}`) },
	}
	docs := make([]*Document, 0, 2*len(variants))
	for i, edit := range variants {
		built := &Document{Flags: map[string]*Flag{"f": flag(edit)}}
		docs = append(docs, built)
		text, err := json.Marshal(built)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := Parse(text)
		if err != nil {
			t.Fatalf("variant %d: %v", i, err)
		}
		docs = append(docs, parsed)
	}
	for i, a := range docs {
		sa, ps := Compile(a)
		if len(ps) > 0 {
			t.Fatalf("doc %d: %v", i, ps)
		}
		ca, _ := canonicalDocument(a)
		for j, b := range docs {
			sb, _ := Compile(b)
			cb, _ := canonicalDocument(b)
			_, _, changed := Diff(sa, sb)
			if want := string(ca) != string(cb); (len(changed) == 1) != want {
				t.Errorf("docs %d and %d: changed %v, canonical encodings differ: %v\n%s\n%s", i, j, changed, want, ca, cb)
			}
		}
	}
}

// TestParsedRulesEvaluateLikeDecodedOnes: a rule Compile takes from Parse (one-key
// objects held as ruleOps, never decoded twice) evaluates exactly like the same
// rule decoded from its text, data objects and all.
func TestParsedRulesEvaluateLikeDecodedOnes(t *testing.T) {
	rules := []string{
		`{"if":[{"in":[{"var":"country"},["CH","DE"]]},"on","off"]}`,
		`{"==":[{"var":"obj"},{"a":{"b":1},"c":[{"d":2}]}]}`,
		`{"var":["missing",{"x":{"y":1},"z":[{"w":true}]}]}`,
		`{"if":[{"var":"flag"},{"cat":["o","n"]},{"merge":[[{"k":1}],[{"j":{"i":2}}]]}]}`,
		`{"some":[{"var":"list"},{"==":[{"var":""},{"a":{"b":1}}]}]}`,
		`{"fractional":[{"cat":[{"var":"targetingKey"},"salt"]},["on",50],["off",50]]}`,
		`{"if":[{"sem_ver":[{"var":"version"},">=","1.2.0"]},"on",{"<":[{"var":"age"},18]},"off",null]}`,
		`{"and":[{"!":[{"missing":["a","b"]}]},{"all":[{"var":"list"},{">":[{"var":""},0]}]}]}`,
		`{"$ref":"vip"}`,
	}
	ctxs := []map[string]any{
		nil,
		{"targetingKey": "u1", "country": "CH", "flag": true, "version": "1.3.0", "age": 30.0, "list": []any{1.0, 2.0}, "a": 1.0, "b": 2.0},
		{"targetingKey": "u2", "country": "FR", "obj": map[string]any{"a": map[string]any{"b": 1.0}, "c": []any{map[string]any{"d": 2.0}}},
			"list": []any{map[string]any{"a": map[string]any{"b": 1.0}}}, "version": "0.9.0", "age": 10.0},
	}
	evaluators := `{"vip":{"in":[{"var":"email"},["a@x.io"]]}}`
	for i, rule := range rules {
		text := fmt.Sprintf(`{"$evaluators":%s,"flags":{"f":{"state":"ENABLED","variants":{"on":"on","off":"off","true":"on","false":"off"},"defaultVariant":"off","targeting":%s}}}`, evaluators, rule)
		parsed, _, err := Load([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := Parse([]byte(text))
		built := *doc.Flags["f"]
		built.parsed = nil // as if built in Go: Compile decodes Targeting
		built.Targeting = json.RawMessage(rule)
		decoded, _ := Compile(&Document{Evaluators: doc.Evaluators, Flags: map[string]*Flag{"f": &built}})
		if string(doc.Flags["f"].Targeting) != string(mustCanonical(t, rule)) {
			t.Errorf("rule %d: Targeting %s is not the canonical text", i, doc.Flags["f"].Targeting)
		}
		for j, ctx := range ctxs {
			a := parsed.EvaluateAt("f", TypeString, "dflt", ctx, 1700000000)
			b := decoded.EvaluateAt("f", TypeString, "dflt", ctx, 1700000000)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("rule %d, context %d:\nparsed  %+v\ndecoded %+v", i, j, a, b)
			}
		}
	}
}

func mustCanonical(t *testing.T, text string) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		t.Fatal(err)
	}
	b, err := CanonicalValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRuleDataHoldsNoOperations: the data objects of a parsed rule are plain
// objects all the way down, whatever one-key objects they hold.
func TestRuleDataHoldsNoOperations(t *testing.T) {
	doc, err := Parse([]byte(`{"flags":{"f":{"state":"ENABLED","variants":{"on":true},"targeting":
		{"==":[{"var":"x"},{"a":{"b":{"c":1}},"d":[{"e":2},[{"f":3}]]}]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	rule, ok := doc.Flags["f"].parsedRule()
	if !ok {
		t.Fatal("no parsed rule")
	}
	op, ok := rule.(ruleOp)
	if !ok || op.op != "==" {
		t.Fatalf("rule = %#v", rule)
	}
	data := op.arg.([]any)[1]
	want := map[string]any{"a": map[string]any{"b": map[string]any{"c": 1.0}},
		"d": []any{map[string]any{"e": 2.0}, []any{map[string]any{"f": 3.0}}}}
	if !reflect.DeepEqual(data, want) {
		t.Errorf("data = %#v", data)
	}
}
