package yamlconf

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

type inner struct {
	Port int `yaml:"port"`
}

type outer struct {
	Name    string        `yaml:"name"`
	Every   time.Duration `yaml:"every"`
	Inner   inner         `yaml:"inner"`
	Items   []inner       `yaml:"items"`
	Pointer *inner        `yaml:"pointer"`
}

func decode(t *testing.T, text string) (outer, error) {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(text), &root); err != nil {
		t.Fatal(err)
	}
	var o outer
	return o, Decode(root.Content[0], &o, "", "skipped")
}

func TestDecodeNamesThePath(t *testing.T) {
	o, err := decode(t, "name: a\nevery: 2s\ninner: {port: 1}\nitems: [{port: 2}]\npointer: {port: 3}\nskipped: whatever\n")
	if err != nil || o.Name != "a" || o.Every != 2*time.Second || o.Inner.Port != 1 || o.Items[0].Port != 2 || o.Pointer.Port != 3 {
		t.Fatalf("decode = %+v, %v", o, err)
	}
	for text, want := range map[string]string{
		"nmae: a\n":                    "nmae: unknown key (known keys here: name, every, inner, items, pointer, skipped)",
		"name: a\nname: b\n":           "name: duplicate key",
		"inner: {port: x}\n":           "inner.port: line 1: wrong type (!!str, want int)",
		"items: [{port: 1}, {por: 2}]": "items[1].por: unknown key",
		"every: soon\n":                "every: must be a duration like 100ms or 30s",
		"pointer: [1]\n":               "pointer: must be a mapping",
	} {
		_, err := decode(t, text)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to contain %q", text, err, want)
		}
	}
}

// TestErrorTextHidesTheValue: a wrong-type error names the type, never the value,
// since configuration values may be secrets.
func TestErrorTextHidesTheValue(t *testing.T) {
	_, err := decode(t, "inner: {port: s3cr3t-value}\n")
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error %v repeats the value", err)
	}
}
