package daemon

import (
	"testing"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/sources"
)

func TestSecretFlagsRedactProblems(t *testing.T) {
	secret := secretKeys([]sourceResult{
		{name: "git", res: &sources.Result{}},
		{name: "vault", res: &sources.Result{Secret: map[string]bool{"team/api.key": true, "a": true}}},
		{name: "gone"},
	})
	errs := []FlagError{
		{Flag: "team/api.key", Path: "flags.team/api.key.variants.TOPSECRET.x", Message: `"TOPSECRET" bad`, Source: "validate"},
		{Path: "flags.a.defaultVariant", Message: `"TOPSECRET" is not a variant`, Source: "validate"},
		{Path: "flags.ab.defaultVariant", Message: `"visible" is not a variant`, Source: "validate"},
		{Flag: "plain", Path: "flags.plain", Message: "visible", Source: "merge"},
	}
	secret.redactFlagErrors(errs)
	want := []FlagError{
		{Flag: "team/api.key", Path: "flags.team/api.key.variants", Message: redactedProblem, Source: "validate"},
		{Flag: "a", Path: "flags.a.defaultVariant", Message: redactedProblem, Source: "validate"},
		{Path: "flags.ab.defaultVariant", Message: `"visible" is not a variant`, Source: "validate"},
		{Flag: "plain", Path: "flags.plain", Message: "visible", Source: "merge"},
	}
	for i := range want {
		if errs[i] != want[i] {
			t.Errorf("problem %d = %+v, want %+v", i, errs[i], want[i])
		}
	}
	p := flagset.Problem{Flag: "a", Path: "flags.a", Message: "TOPSECRET"}
	secret.redactProblem(&p)
	if p.Message != redactedProblem {
		t.Errorf("redactProblem kept %q", p.Message)
	}
	// An empty set (nothing secret) and a nil one (unknown) differ for isSecret.
	doc, err := flagset.Parse([]byte(`{"flags":{"s":{"state":"ENABLED","variants":{"x":"x"},"defaultVariant":"x","metadata":{"source":"ssm:/p/s@1"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	set, probs := flagset.CompileStrict(doc)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	if !isSecret(set, nil, "s") || isSecret(set, secretFlags{}, "s") || !isSecret(set, secretFlags{"s": true}, "s") {
		t.Errorf("isSecret: unknown must count SSM flags as secret, a known set decides")
	}
}
