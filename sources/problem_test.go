package sources

import (
	"errors"
	"testing"
)

func TestRelativeKey(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		ok        bool
	}{
		{"/flags/prod/new_dashboard", "new_dashboard", true},
		{"/flags/prod/team/x.y-z:1", "team/x.y-z:1", true},
		{"/flags/production/x", "", false},
		{"/flags/prod/", "", false},
		{"/flags/prod/bad key", "", false},
	} {
		key, err := RelativeKey("/flags/prod/", tc.name)
		if (err == nil) != tc.ok || (tc.ok && key != tc.key) {
			t.Errorf("RelativeKey(%q) = %q, %v; want %q ok=%v", tc.name, key, err, tc.key, tc.ok)
		}
	}
}

func TestValueProblem(t *testing.T) {
	err := errors.New("flags.x.defaultVariant: names no variant")
	p := ValueProblem("x", Origin{Scheme: "consul", Location: "flags/x", Version: 3}, err, "")
	if p.Flag != "x" || p.Path != "flags.x.defaultVariant" || p.Message != "names no variant (consul:flags/x@3)" {
		t.Errorf("got %+v", p)
	}
	p = ValueProblem("x", Origin{Scheme: "ssm", Location: "/f/x", Version: 2}, err, "withheld")
	if p.Path != "flags.x.defaultVariant" || p.Message != "withheld (ssm:/f/x@2)" {
		t.Errorf("redacted: got %+v", p)
	}
	p = ValueProblem("y", Origin{Scheme: "env", Location: "Y"}, errors.New("not JSON"), "")
	if p.Path != "flags.y" || p.Message != "not JSON (env:Y)" {
		t.Errorf("no path: got %+v", p)
	}
}

// TestOriginString: the display form is the metadata.source form of docs/FORMAT.md,
// and a location holding "@" stays whole (it is never parsed back).
func TestOriginString(t *testing.T) {
	for o, want := range map[Origin]string{
		{Scheme: "ssm", Location: "/flags/prod/x", Version: 3}:       "ssm:/flags/prod/x@3",
		{Scheme: "consul", Location: "team@example/x", Version: 812}: "consul:team@example/x@812",
		{Scheme: "file", Location: "flags/a.yaml"}:                   "file:flags/a.yaml",
		{Scheme: "env", Location: "FLAGSYNC_FLAG_BETA"}:              "env:FLAGSYNC_FLAG_BETA",
		{}: "",
	} {
		if got := o.String(); got != want {
			t.Errorf("%+v: %q, want %q", o, got, want)
		}
	}
	p := Provenance{
		{Source: "git", Origin: Origin{Scheme: "file", Location: "flags.yaml"}, Definition: true},
		{Source: "env", Origin: Origin{Scheme: "env", Location: "FLAGSYNC_FLAG_BETA_MODE"}},
	}
	if got := p.String(); got != "file:flags.yaml+env:FLAGSYNC_FLAG_BETA_MODE" {
		t.Errorf("provenance %q", got)
	}
	if d, ok := p.Definition(); !ok || d.Source != "git" {
		t.Errorf("definition %+v %v", d, ok)
	}
	if _, ok := p.Single(); ok {
		t.Error("two contributions are not single")
	}
	if _, ok := p[1:].Definition(); ok {
		t.Error("an overlay alone has no definition")
	}
}
