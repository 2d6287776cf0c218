package sources

import (
	"math"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/flagset"
)

// yamlBomb is a "billion laughs": nine levels of nine aliases, 9^9 nodes when expanded.
const yamlBomb = `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`

func TestParseValue(t *testing.T) {
	cases := []struct {
		raw     string
		value   any
		state   flagset.State
		def     string
		full    bool
		wantErr string
	}{
		{raw: "true", value: true},
		{raw: " false\n", value: false},
		{raw: "42", value: float64(42)},
		{raw: "1.5", value: 1.5},
		{raw: "green", value: "green"},
		{raw: "#2da44e", value: "#2da44e"},
		{raw: "~", wantErr: "null value"},
		{raw: `"on"`, value: "on"},
		{raw: "not: json: at all", wantErr: "flags.k: malformed YAML value"},
		{raw: "broken: [", wantErr: "flags.k: malformed YAML value"},
		{raw: "{broken: [", wantErr: "flags.k: malformed YAML value"},
		{raw: "dark mode", value: "dark mode"},
		{raw: "dark\nmode", wantErr: "flags.k: a bare string on several lines"},
		{raw: "state ENABLED\n  variants", wantErr: "flags.k: a bare string on several lines"},
		{raw: "# colour\ngreen # comment\n", value: "green"},
		{raw: "---\ngreen\n...", value: "green"},
		{raw: "\"dark\n mode\"", value: "dark mode"},
		{raw: "v2.1", value: "v2.1"},
		{raw: "2024-01-01", value: "2024-01-01"},
		{raw: "yes", value: "yes"},
		{raw: "'true'", value: "true"},
		{raw: "|\n  two\n  lines", value: "two\nlines"},
		{raw: "0x1F", value: float64(31)},
		{raw: "-2.5e3", value: float64(-2500)},
		{raw: "9007199254740992", value: float64(1 << 53)},
		{raw: "9007199254740993", wantErr: "flags.k: number is not exactly representable"},
		{raw: "12345678901234567890", wantErr: "flags.k: number is not exactly representable"},
		{raw: ".nan", wantErr: "flags.k: not a finite number"},
		{raw: "-.inf", wantErr: "flags.k: not a finite number"},
		{raw: "# only a comment\n# and another", wantErr: "flags.k: holds only YAML comments"},
		{raw: "---", wantErr: "flags.k: null value"},
		{raw: "a\n---\nb", wantErr: "flags.k: holds more than one YAML document"},
		{raw: "!!binary aGVsbG8=", wantErr: "flags.k: YAML tag !!binary"},
		{raw: "!!str 42", wantErr: "flags.k: YAML tag !!str"},
		{raw: "&a x", wantErr: "flags.k: YAML anchor"},
		{raw: "*a", wantErr: "flags.k: malformed YAML value"},
		{raw: "state: &s DISABLED", wantErr: "flags.k.state: YAML anchor"},
		{raw: "{state: !!str DISABLED}", wantErr: "flags.k.state: YAML tag !!str"},
		{raw: "{state: DISABLED}", state: flagset.Disabled},
		{raw: "state: ENABLED\nstate: DISABLED", wantErr: "flags.k.state: key repeated"},
		{raw: `{"variants":{"a":1,"a":2},"defaultVariant":"a","state":"ENABLED"}`, wantErr: "flags.k.variants.a: key repeated"},
		{raw: "state: [DISABLED]", wantErr: "flags.k.state: must be ENABLED or DISABLED"},
		{raw: "- a\n- b", wantErr: "must be a flag definition"},
		{raw: "\xff\xfe", wantErr: "flags.k: not valid UTF-8"},
		{raw: "variants: {a: 1}\ndefaultVariant: a\nstate: ENABLED\nmetadata: !!binary aGVsbG8=", wantErr: "flags.k.metadata: YAML tag !!binary"},
		{raw: "variants: {a: 1}\ndefaultVariant: a\nstate: ENABLED\nmetadata: {owner: &o team-a, reviewer: *o}", full: true},
		{raw: `{"state":"MAYBE","variants":{"a":1},"defaultVariant":"a"}`, wantErr: "flags.k.state: "},
		{raw: `{"state":"ENABLED","variants":{"a":1},"defaultVariant":"b"}`, wantErr: "flags.k.defaultVariant: "},
		{raw: `{"variants":{"a":1},"defaultVariant":"a"}`, wantErr: "flags.k.state: required"},
		{raw: `{"state":"ENABLED","variants":{"a":1},"defaultVariant":"a","bogus":1}`, wantErr: `flags.k: unknown field "bogus"`},
		{raw: `{"state":"ENABLED","variants":{"a":1,"b":2},"defaultVariant":"a","targeting":{"$ref":"elsewhere"}}`, full: true},
		{raw: yamlBomb, wantErr: "flags.k.a: unknown field"},
		{raw: "variants: {a: 1}\ndefaultVariant: a\nstate: ENABLED\n" + yamlBomb, wantErr: "flags.k: "},
		{raw: `{"state":"DISABLED"}`, state: flagset.Disabled},
		{raw: "defaultVariant: blue", def: "blue"},
		{raw: `{"state":"ENABLED","variants":{"a":1},"defaultVariant":"a"}`, full: true},
		{raw: "", wantErr: "flags.k: empty value"},
		{raw: "null", wantErr: "null value"},
		{raw: "{broken", wantErr: "malformed"},
		{raw: "#2da44e  ", value: "#2da44e"},
		{raw: `{"state":"MAYBE"}`, wantErr: "flags.k.state"},
		{raw: `{"owner":"x"}`, wantErr: "flags.k.owner: unknown field"},
		{raw: "[1,2]", wantErr: "must be a flag definition"},
	}
	for _, c := range cases {
		def, ov, err := ParseValue("k", []byte(c.raw), Origin{Scheme: "test", Location: "k"})
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: err = %v, want %q", c.raw, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.raw, err)
			continue
		}
		if c.full {
			if def == nil || ov != nil || def.DefaultVariant == nil || *def.DefaultVariant != "a" {
				t.Errorf("%q: def=%+v ov=%+v", c.raw, def, ov)
			}
			continue
		}
		if def != nil || ov == nil || ov.Origin.String() != "test:k" {
			t.Errorf("%q: def=%+v ov=%+v", c.raw, def, ov)
			continue
		}
		switch {
		case c.value != nil:
			if !ov.HasValue || ov.Value != c.value {
				t.Errorf("%q: value = %#v, want %#v", c.raw, ov.Value, c.value)
			}
		case c.state != "":
			if ov.State == nil || *ov.State != c.state || ov.HasValue {
				t.Errorf("%q: %+v", c.raw, ov)
			}
		case c.def != "":
			if ov.DefaultVariant == nil || *ov.DefaultVariant != c.def {
				t.Errorf("%q: %+v", c.raw, ov)
			}
		}
	}
}

// BenchmarkParseValueYAMLBomb measures how long a "billion laughs" takes to be
// refused, as a patch-shaped mapping and inside a full definition (goal: < 10 ms).
func BenchmarkParseValueYAMLBomb(b *testing.B) {
	for _, bc := range []struct{ name, raw string }{
		{"bare", yamlBomb},
		{"definition", "variants: {a: 1}\ndefaultVariant: a\nstate: ENABLED\n" + yamlBomb},
		{"variant", "state: ENABLED\ndefaultVariant: a\n" + strings.Replace(yamlBomb, "i: &i", "variants:\n  a: &i", 1)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := ParseValue("k", []byte(bc.raw), Origin{Scheme: "o", Location: "k"}); err == nil {
					b.Fatal("bomb accepted")
				}
			}
		})
	}
}

// FuzzParseValue checks the contract of ParseValue on any text: no panic, exactly
// one result or an error naming the flag, and a bare value is a bool, a string or a
// finite number.
func FuzzParseValue(f *testing.F) {
	for _, s := range []string{"true", "42", "green", "#2da44e", "{broken: [", "state: DISABLED",
		`{"state":"ENABLED","variants":{"a":1},"defaultVariant":"a"}`, yamlBomb, "&a x", "!!binary aGVsbG8=", "a\n---\nb"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		def, ov, err := ParseValue("k", raw, Origin{Scheme: "o", Location: "k"})
		if err != nil {
			if def != nil || ov != nil || !strings.HasPrefix(err.Error(), "flags.k") {
				t.Fatalf("err %v with def=%v ov=%v", err, def, ov)
			}
			return
		}
		if (def == nil) == (ov == nil) {
			t.Fatalf("def=%v ov=%v", def, ov)
		}
		if ov != nil && ov.HasValue {
			switch v := ov.Value.(type) {
			case bool, string:
			case float64:
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("non-finite %v", v)
				}
			default:
				t.Fatalf("bare value of type %T", v)
			}
		}
	})
}
