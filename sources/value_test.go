package sources

import (
	"strings"
	"testing"

	"github.com/flagsync/flagsync/flagset"
)

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
		{raw: "not: json: at all", value: "not: json: at all"},
		{raw: `{"state":"DISABLED"}`, state: flagset.Disabled},
		{raw: "defaultVariant: blue", def: "blue"},
		{raw: `{"state":"ENABLED","variants":{"a":1},"defaultVariant":"a"}`, full: true},
		{raw: "", wantErr: "flags.k: empty value"},
		{raw: "null", wantErr: "null value"},
		{raw: "{broken", wantErr: "malformed"},
		{raw: `{"state":"MAYBE"}`, wantErr: "flags.k.state"},
		{raw: `{"owner":"x"}`, wantErr: "flags.k.owner: unknown field"},
		{raw: "[1,2]", wantErr: "must be a flag definition"},
	}
	for _, c := range cases {
		def, ov, err := ParseValue("k", []byte(c.raw), "test:k")
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
		if def != nil || ov == nil || ov.Origin != "test:k" {
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
