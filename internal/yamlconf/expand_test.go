package yamlconf

import "testing"

func TestExpand(t *testing.T) {
	lookup := func(k string) (string, bool) {
		v, ok := map[string]string{"A": "1", "EMPTY": ""}[k]
		return v, ok
	}
	cases := map[string]string{
		"${A}":            "1",
		"x${A}y${A}":      "x1y1",
		"${B:-def}":       "def",
		"${EMPTY:-def}":   "def",
		"$$literal":       "$literal",
		"cost $5":         "cost $5",
		"${A:-unused}":    "1",
		"${B:-}":          "",
		"$${A}":           "${A}",
		"pre-${A}-suffix": "pre-1-suffix",
	}
	for in, want := range cases {
		got, err := expand(in, lookup)
		if err != nil || got != want {
			t.Errorf("expand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"${B}", "${A", "${1X}", "${}"} {
		if _, err := expand(bad, lookup); err == nil {
			t.Errorf("expand(%q) succeeded", bad)
		}
	}
}
