package flagset

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

var fuzzDocs = []string{
	basicDoc,
	benchDoc,
	`{"flags":{}}`,
	`{"$evaluators":{"staff":{"ends_with":[{"var":"email"},"@x.com"]}},"flags":{"a":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off","targeting":{"if":[{"$ref":"staff"},"on",null]}}}}`,
	`{"flags":{"f":{"state":"ENABLED","variants":{"a":1,"b":2.5},"targeting":{"fractional":[{"var":"email"},["a",1],["b",3]]}}}}`,
	`{"flags":{"x":{"state":"DISABLED","variants":{"o":{"k":[1,"2",null]}},"defaultVariant":"o","metadata":{"expiresAt":"2027-01-01T00:00:00Z"}}}}`,
	"flags:\n  y:\n    state: ENABLED\n    variants: {a: 'x', b: 'y'}\n    defaultVariant: a\n    targeting: {if: [{sem_ver: [{var: v}, '>=', '1.2.0']}, b, a]}\n",
	`{"flags":{"bad":{"state":"ON","variants":{"a":[1]}}},"extra":1}`,
	`{"flags":{"r":{"state":"ENABLED","variants":{"a":"a"},"targeting":{"$ref":"loop"}}},"$evaluators":{"loop":{"$ref":"loop"}}}`,
	"%YAML 1.2\n---\nflags: {f: {state: ENABLED, variants: {a: =, b: ._5, c: 0x1F}, defaultVariant: a}}\n",
	"a: &a [x, *a]\nflags: {}\n",
	"flags: {}\nmetadata: {v: !!int '12', w: !!str 1, x: &n 7, y: *n}\n",
}

// FuzzParse: Parse/Load never panic; a document that loads without problems
// evaluates every flag for every type without panicking.
func FuzzParse(f *testing.F) {
	for _, d := range fuzzDocs {
		f.Add([]byte(d))
	}
	ctxs := []map[string]any{
		nil,
		{"targetingKey": "user-1", "email": "a@x.com", "v": "1.2.3"},
		{"targetingKey": 5, "email": []any{1.0}, "v": map[string]any{"a": nil}},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, ps, err := Load(data)
		if err != nil {
			if s != nil {
				t.Fatal("Load returned a Set and an error")
			}
			return
		}
		if s == nil {
			t.Fatal("Load returned neither a Set nor an error")
		}
		want, err := canonicalDocument(s.Document())
		if err != nil {
			t.Fatalf("Canonical of a compiled set: %v", err)
		}
		// A reader's set encodes on demand what the reference encodes.
		if got, err := s.Canonical(); err != nil || string(got) != string(want) {
			t.Fatalf("Set.Canonical = %s (%v), want %s", got, err, want)
		}
		if _, ok := s.Metadata()[MetaVersion]; !ok {
			if rev, _ := documentRevision(s.Document()); rev != s.Revision() {
				t.Fatalf("Revision = %s, want %s", s.Revision(), rev)
			}
		}
		if len(ps) > 0 {
			return
		}
		// The rules Parse handed over evaluate like the same rules decoded from text.
		doc, _ := Parse(data)
		built := &Document{Evaluators: doc.Evaluators, Metadata: doc.Metadata, Flags: map[string]*Flag{}}
		for k, fl := range doc.Flags {
			c := *fl
			c.parsed = nil
			built.Flags[k] = &c
		}
		decoded, _ := Compile(built)
		for _, key := range s.Keys() {
			for typ := TypeBoolean; typ <= TypeObject; typ++ {
				for _, ctx := range ctxs {
					r := s.EvaluateAt(key, typ, nil, ctx, 1700000000)
					if r.Reason == "" {
						t.Fatalf("%s: empty reason", key)
					}
					if d := decoded.EvaluateAt(key, typ, nil, ctx, 1700000000); !reflect.DeepEqual(r, d) {
						t.Fatalf("%s: parsed rule %+v, decoded rule %+v", key, r, d)
					}
				}
			}
		}
	})
}

// FuzzEvaluate: compiling and running any rule on any context never panics.
func FuzzEvaluate(f *testing.F) {
	seeds := [][2]string{
		{`{"if":[{"ends_with":[{"var":"email"},"@example.com"]},"on","off"]}`, `{"email":"a@example.com"}`},
		{`{"fractional":[["a",50],["b",50]]}`, `{"targetingKey":"u1"}`},
		{`{"fractional":[{"cat":[{"var":"$flagd.flagKey"},{"var":"id"}]},["a",1],["b",1]]}`, `{"id":7}`},
		{`{"sem_ver":[{"var":"v"},"^","1.0.0"]}`, `{"v":"1.5.0-rc.1+b"}`},
		{`{"reduce":[{"var":"xs"},{"+":[{"var":"current"},{"var":"accumulator"}]},0]}`, `{"xs":[1,2,"3"]}`},
		{`{"map":[{"var":"xs"},{"substr":[{"var":""},-2,-1]}]}`, `{"xs":["abc",5,null]}`},
		{`{"missing_some":[1,["a","b.c"]]}`, `{"b":{"c":0}}`},
		{`{"in":[{"var":"u.0"},{"merge":[["x"],"y"]}]}`, `{"u":["y"]}`},
		{`{"<":[1,{"var":"n"},{"%":[7,0]}]}`, `{"n":"2"}`},
		{`{"var":""}`, `{"$flagd":1}`},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, rule, ctx string) {
		var c map[string]any
		if json.Unmarshal([]byte(ctx), &c) != nil {
			c = nil
		}
		raw := json.RawMessage(rule)
		if !json.Valid(raw) {
			return
		}
		n, errs := newRuleCompiler(map[string]json.RawMessage{"e": raw}).compileTargeting(&Flag{Targeting: raw})
		if len(errs) > 0 {
			if n != nil {
				t.Fatal("problems and a compiled rule")
			}
			return
		}
		out := n.eval(&state{ctx: c, flagKey: "f", now: 1, hasNow: true})
		if _, err := CanonicalValue(out); err != nil {
			t.Fatalf("rule result is not JSON: %#v: %v", out, err)
		}
	})
}

// FuzzResolveYAMLScalar: the core-schema resolver never panics, a plain scalar that
// is not null, a boolean or a number stays exactly its text, numbers are finite,
// and every tagged kind either agrees with the untagged reading or is an error.
func FuzzResolveYAMLScalar(f *testing.F) {
	for _, s := range []string{"", "~", "null", "True", "tRUE", "0x1F", "0o17", "017", "+1", ".5", "5.", "1e400",
		"._5", "1_000", "=", "<<", ".inf", "-.Inf", ".NaN", "9007199254740993", "0x", "-0", "1:20", "yes"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		v, err := resolveYAMLScalar(text, "")
		if err != nil {
			return
		}
		switch x := v.(type) {
		case nil, bool:
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("%q resolved to %v", text, x)
			}
		case string:
			if x != text {
				t.Fatalf("%q resolved to the string %q", text, x)
			}
		default:
			t.Fatalf("%q resolved to %T", text, v)
		}
		for _, kind := range []string{"null", "bool", "int", "float"} {
			w, err := resolveYAMLScalar(text, kind)
			if err == nil && kind != "float" && w != v {
				t.Fatalf("%q as !!%s = %v, untagged %v", text, kind, w, v)
			}
		}
	})
}

// FuzzDeclaredVersion: reading only a document's metadata never panics, and for a document
// every reader accepts it finds the revision and generation the full parse finds.
func FuzzDeclaredVersion(f *testing.F) {
	f.Add([]byte(`{"flags":{},"metadata":{"version":"abc","flagsync.generation":1796325789645}}`))
	f.Add([]byte(`{"metadata":{"flagsync.generation":1.5e3,"version":""}}`))
	f.Add([]byte(`{"metadata":{"flagsync.generation":"7"}}`))
	f.Add([]byte(`flags: {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, gen := DeclaredVersion(data)
		set, probs, err := Load(data)
		if err != nil || len(probs) > 0 || len(data) == 0 || data[0] != '{' {
			return
		}
		if gen != set.Generation() {
			t.Errorf("generation %d, the full parse says %d", gen, set.Generation())
		}
	})
}
