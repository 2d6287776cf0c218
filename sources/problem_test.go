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
	p := ValueProblem("x", "consul:flags/x@3", err, "")
	if p.Flag != "x" || p.Path != "flags.x.defaultVariant" || p.Message != "names no variant (consul:flags/x@3)" {
		t.Errorf("got %+v", p)
	}
	p = ValueProblem("x", "ssm:/f/x@2", err, "withheld")
	if p.Path != "flags.x.defaultVariant" || p.Message != "withheld (ssm:/f/x@2)" {
		t.Errorf("redacted: got %+v", p)
	}
	p = ValueProblem("y", "o", errors.New("not JSON"), "")
	if p.Path != "flags.y" || p.Message != "not JSON (o)" {
		t.Errorf("no path: got %+v", p)
	}
}
