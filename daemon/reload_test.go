package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// reloadHarness is a harness with two file sources, s1 (h.flags) and s2 (s2Path),
// and reloadConfig builds the configuration text naming them.
type reloadHarness struct {
	*harness
	s2Path string
}

func newReloadHarness(t *testing.T) *reloadHarness {
	t.Helper()
	h := &reloadHarness{harness: bareHarness(t, "flags.json", "a", "b")}
	h.s2Path = filepath.Join(h.dir, "s2.yaml")
	if err := os.WriteFile(h.s2Path, []byte(flagYAML("x", "y")), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// config is the daemon configuration; s2Extra is added to s2's entry.
func (h *reloadHarness) config(s2Extra string) string {
	return fmt.Sprintf("flagSetId: reload\nschedule: \"@every 1h\"\nsources:\n"+
		"  - {name: s1, type: file, path: %q}\n"+
		"  - {name: s2, type: file, path: %q%s}\n"+
		"outputs:\n  file: {path: %q}\n", h.flags, h.s2Path, s2Extra, h.out)
}

func (h *reloadHarness) sourceStatus(d *Daemon, name string) SourceStatus {
	h.t.Helper()
	for _, s := range d.Status().Sources {
		if s.Name == name {
			return s
		}
	}
	h.t.Fatalf("no source %s in the status", name)
	return SourceStatus{}
}

// first runs daemon A over the healthy sources and returns it after one publish.
func (h *reloadHarness) first() *Daemon {
	h.t.Helper()
	a := h.build(h.config(""), hopts{})
	rep, err := a.Sync(context.Background(), false)
	if err != nil || rep.Result != "published" || rep.Flags != 4 {
		h.t.Fatalf("daemon A: %+v %v", rep, err)
	}
	return a
}

func TestInheritSourcesKeepsFailedSourceFlags(t *testing.T) {
	h := newReloadHarness(t)
	a := h.first()
	aS2 := h.sourceStatus(a, "s2")

	// After the reload s2 fails (its file is gone) and s1 changed.
	if err := os.Remove(h.s2Path); err != nil {
		t.Fatal(err)
	}
	h.writeFlags(flagYAML("a", "b", "c"))

	// Without inheriting, the new daemon is a cold start: s2 never fetched, nothing
	// is published (s1's change is held back too).
	cold := h.build(h.config(""), hopts{})
	rep, err := cold.Sync(context.Background(), false)
	if rep.Result != "failed" || err == nil || !strings.Contains(err.Error(), "s2 never fetched successfully") {
		t.Fatalf("cold daemon: %+v %v, want failed because s2 never fetched", rep, err)
	}
	if got := h.published().Keys(); !slices.Equal(got, []string{"a", "b", "x", "y"}) {
		t.Fatalf("cold daemon changed the published flags: %v", got)
	}

	b := h.build(h.config(""), hopts{})
	b.InheritSources(a)
	if !strings.Contains(h.logs.String(), `"msg":"sources carried their last good result over the reload","carried":2,"sources":2`) {
		t.Errorf("no Info log of the carried sources:\n%s", h.logs.String())
	}
	rep, err = b.Sync(context.Background(), false)
	if err == nil || !strings.Contains(err.Error(), "source s2") {
		t.Errorf("daemon B sync error = %v, want s2's fetch error", err)
	}
	if rep.Result != "published" || rep.Flags != 5 {
		t.Fatalf("daemon B: %+v, want s1's change published with s2's inherited flags", rep)
	}
	if got := h.published().Keys(); !slices.Equal(got, []string{"a", "b", "c", "x", "y"}) {
		t.Fatalf("published %v, want s1's new flags and s2's flags from daemon A", got)
	}
	bS2 := h.sourceStatus(b, "s2")
	if bS2.LastSuccess == nil || aS2.LastSuccess == nil || !bS2.LastSuccess.Equal(*aS2.LastSuccess) {
		t.Errorf("s2 lastSuccess = %v, want daemon A's %v", bS2.LastSuccess, aS2.LastSuccess)
	}
	if bS2.LastError == "" || bS2.Definitions != 2 {
		t.Errorf("s2 status = %+v, want its fetch error and 2 inherited definitions", bS2)
	}
}

func TestInheritSourcesSkipsChangedConfig(t *testing.T) {
	h := newReloadHarness(t)
	a := h.first()
	if err := os.Remove(h.s2Path); err != nil {
		t.Fatal(err)
	}
	// s2's entry changed (a timeout added): its old result is of another
	// configuration, so the new daemon treats it as never fetched.
	b := h.build(h.config(", timeout: 5s"), hopts{})
	b.InheritSources(a)
	if !strings.Contains(h.logs.String(), `"carried":1,"sources":2`) {
		t.Errorf("want 1 of 2 sources carried:\n%s", h.logs.String())
	}
	if st := h.sourceStatus(b, "s2"); st.LastSuccess != nil || st.Definitions != 0 {
		t.Errorf("changed s2 inherited: %+v", st)
	}
	if st := h.sourceStatus(b, "s1"); st.LastSuccess == nil || st.Definitions != 2 {
		t.Errorf("unchanged s1 not inherited: %+v", st)
	}
	rep, err := b.Sync(context.Background(), false)
	if rep.Result != "failed" || err == nil || !strings.Contains(err.Error(), "s2 never fetched successfully") {
		t.Fatalf("daemon B: %+v %v, want a cold start for the changed s2", rep, err)
	}
}

func TestInheritSourcesDoesNotRepublish(t *testing.T) {
	h := newReloadHarness(t)
	a := h.first()
	gen := h.published().Generation()
	// Same configuration, every source healthy: the first sync of the new daemon
	// finds the revision the output holds and writes nothing.
	b := h.build(h.config(""), hopts{})
	b.InheritSources(a)
	rep, err := b.Sync(context.Background(), false)
	if err != nil || rep.Result != "unchanged" || rep.Generation != gen {
		t.Fatalf("daemon B healthy: %+v %v, want unchanged at generation %d", rep, err, gen)
	}
	// Same with s2 failing: its inherited result is the one already published.
	if err := os.Remove(h.s2Path); err != nil {
		t.Fatal(err)
	}
	c := h.build(h.config(""), hopts{})
	c.InheritSources(b)
	rep, err = c.Sync(context.Background(), false)
	if err == nil || rep.Result != "unchanged" || rep.Generation != gen {
		t.Fatalf("daemon C with s2 failing: %+v %v, want unchanged at generation %d", rep, err, gen)
	}
	if got := h.published().Generation(); got != gen {
		t.Errorf("the file was rewritten: generation %d, was %d", got, gen)
	}
}

func TestSameSourceConfig(t *testing.T) {
	parse := func(text string, env map[string]string) SourceConfig {
		t.Helper()
		cfg, err := ParseConfig([]byte("flagSetId: x\nsources:\n"+text+"outputs: {file: {path: out.json}}\n"), lookupFrom(env))
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Sources[0]
	}
	base := parse("  - {name: s, type: file, path: '${DIR}/f.yaml'}\n", map[string]string{"DIR": "/a"})
	for _, c := range []struct {
		name string
		text string
		env  map[string]string
		same bool
	}{
		{"same after expansion, other layout and a comment", "  # git flags\n  - name: s\n    type: file\n    path: \"/a/f.yaml\"\n", nil, true},
		{"env expands to another path", "  - {name: s, type: file, path: '${DIR}/f.yaml'}\n", map[string]string{"DIR": "/b"}, false},
		{"timeout", "  - {name: s, type: file, path: /a/f.yaml, timeout: 3s}\n", nil, false},
		{"other key", "  - {name: s, type: file, path: /a/f.yaml, watchDebounce: 1s}\n", nil, false},
		{"name", "  - {name: t, type: file, path: /a/f.yaml}\n", nil, false},
		{"type", "  - {name: s, type: env, path: /a/f.yaml}\n", nil, false},
	} {
		if got := sameSourceConfig(base, parse(c.text, c.env)); got != c.same {
			t.Errorf("%s: same = %v, want %v", c.name, got, c.same)
		}
	}
}

// TestInheritSourcesWhileOldSyncs is for -race: InheritSources reads the old
// daemon's results under its lock even if that daemon still syncs.
func TestInheritSourcesWhileOldSyncs(t *testing.T) {
	h := newReloadHarness(t)
	a := h.first()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			h.writeFlags(flagYAML("a", "b", fmt.Sprintf("n%d", i)))
			_, _ = a.Sync(context.Background(), false)
		}
	}()
	for range 20 {
		b := h.build(h.config(""), hopts{})
		b.InheritSources(a)
		if st := h.sourceStatus(b, "s2"); st.Definitions != 2 {
			t.Fatalf("s2 not inherited: %+v", st)
		}
	}
	<-done
}
