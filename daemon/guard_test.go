package daemon

import (
	"context"
	"errors"
	"testing"
)

// TestGuardBaselineDoesNotSlide: removing flags one sync at a time adds up against
// the baseline; the hold survives a new daemon on the same configuration (a restart,
// through the guard state file); Release publishes the withheld removals even when
// they are most of the whole set, and resets the baseline.
func TestGuardBaselineDoesNotSlide(t *testing.T) {
	h := newHarness(t, hopts{})
	all := keys("g", 10)
	h.writeFlags(flagYAML(all...))
	h.mustSync()
	for n := 9; n >= 5; n-- { // one at a time down to half: each publishes
		h.writeFlags(flagYAML(all[:n]...))
		if rep := h.mustSync(); rep.Result != "published" {
			t.Fatalf("removing down to %d: %+v", n, rep)
		}
	}
	h.writeFlags(flagYAML(all[:4]...)) // the 6th removal of 10
	if rep, err := h.sync(false); !errors.Is(err, ErrHeld) || rep.Result != "held" || h.published().Len() != 5 {
		t.Fatalf("6 of 10 removed one at a time: %+v %v", rep, err)
	}

	// A restart: a new daemon on the same configuration reads the guard state.
	cfgText := "flagSetId: test\nsources:\n  - {name: git, type: file, path: \"" + h.flags + "\"}\noutputs:\n  file: {path: \"" + h.out + "\"}\n"
	h.d = h.build(cfgText, hopts{})
	if rep, err := h.sync(false); !errors.Is(err, ErrHeld) || h.published().Len() != 5 {
		t.Fatalf("after a restart the held removal published: %+v %v", rep, err)
	}

	if _, err := h.d.Release(context.Background(), "nope"); !errors.Is(err, ErrUnknownSource) {
		t.Fatalf("release of an unknown source: %v", err)
	}
	rep, err := h.d.Release(context.Background(), "git")
	if err != nil || rep.Result != "published" || h.published().Len() != 4 || len(h.d.Status().Holds) != 0 {
		t.Fatalf("release: %+v %v", rep, err)
	}
	// The baseline starts over at 4: removing 2 is half, allowed.
	h.writeFlags(flagYAML(all[:2]...))
	if rep := h.mustSync(); rep.Result != "published" {
		t.Fatalf("after release: %+v", rep)
	}
}
