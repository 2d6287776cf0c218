package flagset

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// The expected bytes are written by hand from the rules in docs/FORMAT.md and the
// revisions are SHA-256 of those hand-written bytes (computed with another tool).
func TestCanonicalKnownAnswers(t *testing.T) {
	cases := []struct {
		name, in, canonical, revision string
	}{
		{
			name: "ordering, defaults, volatile metadata",
			in: `{"$schema":"s","metadata":{"version":"abc","flagSetId":"prod","flagsync.generation":5},
			  "flags":{"b":{"state":"ENABLED","variants":{"x":1.0,"y":0.5}},
			  "a":{"state":"DISABLED","variants":{"on":true},"defaultVariant":"on","targeting":{}}}}`,
			canonical: `{"$schema":"s","flags":{"a":{"defaultVariant":"on","state":"DISABLED","variants":{"on":true}},"b":{"defaultVariant":null,"state":"ENABLED","variants":{"x":1,"y":0.5}}},"metadata":{"flagSetId":"prod","flagsync.generation":5,"version":"abc"}}`,
			revision:  "e059afaf38eed012d5130208c91ed83dff38cec5d4ed1a71e5608b832553ef59",
		},
		{
			name: "numbers, escapes, unicode key order",
			in: `{"flags":{"k":{"state":"ENABLED","defaultVariant":"v","targeting":{"if":[true,"v"]},
			  "variants":{"v":{"z":[1e21,1e-7,123456789012345678,0.1,-0,1.5,100],"é":"a\"b\\c\u0001\n\t/<\u2028","a":null}}}}}`,
			canonical: "{\"flags\":{\"k\":{\"defaultVariant\":\"v\",\"state\":\"ENABLED\",\"targeting\":{\"if\":[true,\"v\"]},\"variants\":{\"v\":{\"a\":null,\"z\":[1e+21,1e-7,123456789012345680,0.1,0,1.5,100],\"é\":\"a\\\"b\\\\c\\u0001\\n\\t/<\u2028\"}}}}}",
			revision:  "c670b8bdf82068b0cdb5c239e65fe603ea2090a9f87517b2ad2a971913b84c41",
		},
		{
			name:      "empty",
			in:        `{"flags":{}}`,
			canonical: `{"flags":{}}`,
			revision:  "b0c7411faa13dd876ec5dc0ee0d37461b0346afcd63632f8d2619f55f4f6dc48",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := Parse([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			got, err := canonicalDocument(d)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.canonical {
				t.Fatalf("canonical:\n got %s\nwant %s", got, c.canonical)
			}
			rev, err := documentRevision(d)
			if err != nil || rev != c.revision {
				t.Fatalf("revision = %s, %v; want %s", rev, err, c.revision)
			}
			// Canonical output parses back to the same canonical bytes.
			d2, err := Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := canonicalDocument(d2)
			if string(again) != c.canonical {
				t.Fatalf("not idempotent: %s", again)
			}
		})
	}
}

func TestSetRevision(t *testing.T) {
	s := mustLoad(t, `{"flags":{},"metadata":{"flagSetId":"x","flagsync.generation":7,"flagsync.generatedAt":"2026-11-26T00:00:00Z"}}`)
	want, _ := documentRevision(&Document{Flags: map[string]*Flag{}, Metadata: map[string]any{"flagSetId": "x"}})
	if s.Revision() != want {
		t.Fatalf("Revision = %s, want %s", s.Revision(), want)
	}
	if s.Generation() != 7 || s.FlagSetID() != "x" {
		t.Fatalf("generation %d, id %q", s.Generation(), s.FlagSetID())
	}
	if ts, ok := s.GeneratedAt(); !ok || !ts.Equal(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("GeneratedAt = %v %v", ts, ok)
	}
	s = mustLoad(t, `{"flags":{},"metadata":{"version":"rev-1"}}`)
	if s.Revision() != "rev-1" {
		t.Fatalf("Revision = %s, want metadata.version", s.Revision())
	}
}

func TestFormatNumber(t *testing.T) {
	cases := map[float64]string{
		0: "0", 1: "1", -1: "-1", 1.5: "1.5", 0.1: "0.1", 1e21: "1e+21", 1e20: "100000000000000000000",
		1e-6: "0.000001", 1e-7: "1e-7", 1.5e-7: "1.5e-7", -2.5e-10: "-2.5e-10", 123e25: "1.23e+27",
		9007199254740992: "9007199254740992", 9007199254740994: "9007199254740994",
		1.7976931348623157e308: "1.7976931348623157e+308", 5e-324: "5e-324", 0.000123: "0.000123",
	}
	for in, want := range cases {
		if got := FormatNumber(in); got != want {
			t.Errorf("FormatNumber(%v) = %s, want %s", in, got, want)
		}
	}
}

func TestCanonicalValue(t *testing.T) {
	got, err := CanonicalValue(map[string]any{"b": []string{"x"}, "a": int64(3), "c": map[string]int{"z": 1}, "d": nil})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":3,"b":["x"],"c":{"z":1},"d":null}`; string(got) != want {
		t.Fatalf("got %s want %s", got, want)
	}
	if _, err := CanonicalValue(make(chan int)); err == nil {
		t.Fatal("want error for a channel")
	}
}

func TestDiff(t *testing.T) {
	old := mustLoad(t, `{"flags":{
	  "same":{"state":"ENABLED","variants":{"a":1},"defaultVariant":"a"},
	  "gone":{"state":"ENABLED","variants":{"a":1}},
	  "meta":{"state":"ENABLED","variants":{"a":1},"metadata":{"owner":"x"}},
	  "state":{"state":"ENABLED","variants":{"a":1}}}}`)
	new := mustLoad(t, `{"flags":{
	  "same":{"defaultVariant":"a","variants":{"a":1.0},"state":"ENABLED"},
	  "meta":{"state":"ENABLED","variants":{"a":1},"metadata":{"owner":"y"}},
	  "state":{"state":"DISABLED","variants":{"a":1}},
	  "fresh":{"state":"ENABLED","variants":{"a":1}}}}`)
	added, removed, changed := Diff(old, new)
	if !reflect.DeepEqual(added, []string{"fresh"}) || !reflect.DeepEqual(removed, []string{"gone"}) ||
		!reflect.DeepEqual(changed, []string{"meta", "state"}) {
		t.Fatalf("Diff = %v %v %v", added, removed, changed)
	}
	added, removed, changed = Diff(nil, new)
	if len(added) != 4 || removed != nil || changed != nil {
		t.Fatalf("Diff(nil, new) = %v %v %v", added, removed, changed)
	}
}

func TestLimits(t *testing.T) {
	big := make([]byte, 100<<20)
	if _, err := Parse(big); err == nil || !strings.Contains(err.Error(), "64 MiB") {
		t.Fatalf("100 MB input: err = %v", err)
	}
	deep := `{"flags":{"x":{"state":"ENABLED","variants":{"a":"a"},"targeting":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}}}`
	if _, err := Parse([]byte(deep)); err == nil || !strings.Contains(err.Error(), "limit of 64 levels") {
		t.Fatalf("deep JSON: err = %v", err)
	}
	deepYAML := "flags:\n  x:\n    targeting: " + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "\n"
	if _, err := Parse([]byte(deepYAML)); err == nil {
		t.Fatal("deep YAML: want error")
	}
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n" +
		"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n" +
		"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
	if _, err := Parse([]byte(bomb)); err == nil || !strings.Contains(err.Error(), "alias") {
		t.Fatalf("alias bomb: err = %v", err)
	}
	if _, err := Parse([]byte("{\"flags\":{\"\xff\":{}}}")); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("invalid UTF-8: err = %v", err)
	}
	if _, err := Parse([]byte(`[1]`)); err == nil {
		t.Fatal("array document: want error")
	}
	if _, err := Parse([]byte(`{"flags":`)); err == nil || !strings.Contains(err.Error(), "invalid JSON") {
		t.Fatalf("truncated JSON: err = %v", err)
	}
}

func TestYAML(t *testing.T) {
	yml := `
# flags for the web app
flags:
  new_dashboard:
    state: ENABLED
    variants: {on: true, off: false}
    defaultVariant: off
    targeting:
      if:
        - in: [{var: country}, [CH, DE]]
        - on
        - null
    metadata:
      expiresAt: 2027-01-01T00:00:00Z
      owner: web
  limit:
    state: ENABLED
    variants: {small: 10, big: 100}
    defaultVariant: big
metadata:
  flagSetId: yaml
`
	s := mustLoad(t, yml)
	if r := s.Evaluate("new_dashboard", TypeBoolean, false, map[string]any{"country": "CH"}); r.Value != true || r.Reason != ReasonTargetingMatch {
		t.Fatalf("got %+v", r)
	}
	if r := s.Evaluate("limit", TypeInteger, int64(0), nil); r.Value != int64(100) {
		t.Fatalf("got %+v", r)
	}
	f, _ := s.Flag("new_dashboard")
	if f.Metadata["expiresAt"] != "2027-01-01T00:00:00Z" {
		t.Fatalf("timestamp must stay a string: %#v", f.Metadata["expiresAt"])
	}
	// Same document as JSON: same canonical bytes.
	j := mustLoad(t, `{"flags":{"new_dashboard":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off",
	  "targeting":{"if":[{"in":[{"var":"country"},["CH","DE"]]},"on",null]},"metadata":{"expiresAt":"2027-01-01T00:00:00Z","owner":"web"}},
	  "limit":{"state":"ENABLED","variants":{"small":10,"big":100},"defaultVariant":"big"}},"metadata":{"flagSetId":"yaml"}}`)
	if s.Revision() != j.Revision() {
		t.Fatal("YAML and JSON forms must have the same revision")
	}
	if _, err := Parse([]byte("flags:\n  1: {}\n")); err == nil || !strings.Contains(err.Error(), "not a string") {
		t.Fatalf("non-string key: err = %v", err)
	}
}

func TestStructuralProblems(t *testing.T) {
	doc := `{"flags":{
	  "a":{"state":"ENABLED","variants":{}},
	  "b":{"state":"ENABLED","variants":{"x":[1]},"extra":1},
	  "c":{"state":5,"variants":{"x":1},"metadata":{"expiresAt":"tomorrow","tags":["x"]}},
	  "d":"nope",
	  "e":{"state":"ENABLED","variants":{"x":"1"},"defaultVariant":"x","targeting":{"$ref":"e1"}}},
	  "$evaluators":{"e1":{"foo":[]}},
	  "metadata":{"flagsync.generation":1.5},
	  "other":true}`
	s, ps, err := Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.Error())
	}
	want := []string{
		`$evaluators.e1: unknown operator "foo"`,
		`metadata.flagsync.generation: must be a non-negative integer`,
		`other: unknown top-level field`,
		`flags.a.variants: must not be empty`,
		`flags.b: unknown field "extra"`,
		`flags.b.variants.x: unsupported value type array (want boolean, string, number or object)`,
		`flags.c.state: must be a string (ENABLED or DISABLED), got number`,
		`flags.c.metadata.expiresAt: "tomorrow" is not an RFC 3339 time`,
		`flags.c.metadata.tags: must be a string, number or boolean, got array`,
		`flags.d: must be an object, got string`,
		`flags.e.targeting: $ref "e1": evaluator is invalid: unknown operator "foo"`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !reflect.DeepEqual(s.Keys(), []string{"e"}) {
		t.Fatalf("keys %v", s.Keys())
	}
	// Without the document's $evaluators the $ref is a targeting problem.
	alone := &Document{Flags: map[string]*Flag{"e": s.Document().Flags["e"]}}
	if ps := alone.Validate(); len(ps) != 1 || ps[0].Path != "flags.e.targeting" {
		t.Fatalf("Validate without $evaluators: %v", ps)
	}
}
