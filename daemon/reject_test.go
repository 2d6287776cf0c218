package daemon

import (
	"strings"
	"testing"
)

// TestInvalidDefinitionKeepsAcceptedOne: a flag whose new definition is invalid, or
// that its file lists without a definition, keeps the definition last accepted from
// that source; the problem is logged once (not per sync) and once more when fixed.
// A flag that never had an accepted definition is left out, as before.
func TestInvalidDefinitionKeepsAcceptedOne(t *testing.T) {
	h := newHarness(t, hopts{})
	good := flagYAML("a", "b", "c")
	h.writeFlags(good)
	h.mustSync()

	bad := strings.Replace(good, "defaultVariant: \"off\"", "defaultVariant: \"maybe\"", 1) // a's
	h.writeFlags(bad + "  fresh:\n    state: ENABLED\n    variants: {\"x\": 1}\n    defaultVariant: \"y\"\n")
	for range 3 {
		h.sync(false)
	}
	set := h.published()
	f, ok := set.Flag("a")
	if !ok || *f.DefaultVariant != "off" {
		t.Fatalf("a = %+v, want its accepted definition kept", f)
	}
	if _, ok := set.Flag("fresh"); ok {
		t.Fatal("an invalid new flag was published")
	}
	st := h.d.Status()
	if len(st.Rejected) != 2 || st.Rejected[0].Flag != "a" || !st.Rejected[0].Kept || st.Rejected[1].Flag != "fresh" || st.Rejected[1].Kept {
		t.Fatalf("rejected = %+v", st.Rejected)
	}
	if n := strings.Count(h.logs.String(), `"msg":"value rejected"`); n != 2 {
		t.Errorf("%d rejection lines for 2 problems over 3 syncs, want 2", n)
	}
	if counter(t, h.metrics.ValueRejections) != 2 || counter(t, h.metrics.FlagRejected) != 2 {
		t.Error("rejection metrics")
	}

	// A null definition is a per-flag problem of the source: the flag is kept too.
	h.writeFlags(strings.Replace(good, "  b:\n    state: ENABLED\n    variants: {\"on\": true, \"off\": false}\n    defaultVariant: \"off\"\n", "  b: null\n", 1))
	h.sync(false)
	if _, ok := h.published().Flag("b"); !ok {
		t.Fatal("b was dropped for a null definition")
	}
	// Fixed: every rejection clears once.
	h.writeFlags(good)
	h.mustSync()
	h.mustSync()
	if st := h.d.Status(); len(st.Rejected) != 0 {
		t.Fatalf("rejected after the fix = %+v", st.Rejected)
	}
	if n := strings.Count(h.logs.String(), `"msg":"value rejection cleared"`); n != 3 {
		t.Errorf("%d cleared lines, want 3 (a, fresh, b)", n)
	}
	if counter(t, h.metrics.FlagRejected) != 0 {
		t.Error("the rejected gauge stays after the fix")
	}
}
