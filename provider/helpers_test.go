package provider

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/transport"
)

// testSnapshot is a snapshot under construction: flags plus set metadata.
type testSnapshot struct {
	flags       map[string]*flagset.Flag
	generation  int64
	generatedAt time.Time
}

func newSnapshot(gen int64) *testSnapshot {
	return &testSnapshot{flags: map[string]*flagset.Flag{}, generation: gen, generatedAt: time.Now().UTC()}
}

// with adds a flag whose only (default) variant is value.
func (s *testSnapshot) with(key string, value any) *testSnapshot {
	return s.withFlag(key, map[string]any{"v": value}, "v", "")
}

// withFlag adds a flag with variants, a default variant ("" = none) and targeting JSON ("" = none).
func (s *testSnapshot) withFlag(key string, variants map[string]any, defaultVariant, targeting string) *testSnapshot {
	f := &flagset.Flag{State: flagset.Enabled, Variants: variants}
	if defaultVariant != "" {
		dv := defaultVariant
		f.DefaultVariant = &dv
	}
	if targeting != "" {
		f.Targeting = json.RawMessage(targeting)
	}
	s.flags[key] = f
	return s
}

// encode returns the snapshot JSON, with metadata.version set to its revision as the
// daemon does, and that revision.
func (s *testSnapshot) encode(t testing.TB) ([]byte, string) {
	t.Helper()
	doc := &flagset.Document{Flags: s.flags, Metadata: map[string]any{
		flagset.MetaFlagSetID:   "test",
		flagset.MetaGeneration:  s.generation,
		flagset.MetaGeneratedAt: s.generatedAt.Format(time.RFC3339Nano),
	}}
	set, problems := flagset.CompileStrict(doc)
	rev := set.Revision()
	if len(problems) > 0 || rev == "" {
		t.Fatalf("revision %q: %v", rev, problems)
	}
	doc.Metadata[flagset.MetaVersion] = rev
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("marshal snapshot: %v", err)
	}
	return data, rev
}

func (s *testSnapshot) writeFile(t testing.TB, path string) {
	t.Helper()
	data, _ := s.encode(t)
	if err := transport.WriteFileAtomic(path, data, 0o644); err != nil {
		t.Fatalf("write snapshot: %v", err)
	}
}

func (s *testSnapshot) publish(t testing.TB, c redis.UniversalClient, prefix string) {
	t.Helper()
	data, rev := s.encode(t)
	if err := transport.Publish(context.Background(), c, prefix, data, rev, s.generation); err != nil {
		t.Fatalf("publish generation %d: %v", s.generation, err)
	}
}

// startDirect initialises p without the SDK and shuts it down at cleanup.
func startDirect(t testing.TB, p *Provider) error {
	t.Helper()
	t.Cleanup(func() {
		if err := p.ShutdownWithContext(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return p.InitWithContext(context.Background(), openfeature.EvaluationContext{})
}

// nextEvent returns the next event of type want, skipping others; it fails after timeout.
func nextEvent(t testing.TB, ch <-chan openfeature.Event, want openfeature.EventType, timeout time.Duration) openfeature.Event {
	t.Helper()
	deadline := time.After(timeout)
	var skipped []string
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("event channel closed while waiting for %s (skipped %v)", want, skipped)
			}
			if ev.EventType == want {
				return ev
			}
			skipped = append(skipped, string(ev.EventType)+": "+ev.Message)
		case <-deadline:
			t.Fatalf("no %s event within %s (saw %v)", want, timeout, skipped)
		}
	}
}

// noEvent fails if any event arrives within d.
func noEvent(t testing.TB, ch <-chan openfeature.Event, d time.Duration) {
	t.Helper()
	select {
	case ev := <-ch:
		t.Fatalf("unexpected event %s: %s", ev.EventType, ev.Message)
	case <-time.After(d):
	}
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func intValue(p *Provider, key string) openfeature.IntResolutionDetail {
	return p.IntEvaluation(context.Background(), key, -1, nil)
}

// checkNoLeak fails if goroutines started during the test outlive it. It is
// registered first so it runs after every other cleanup.
func checkNoLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutines: %d before, %d after shutdown\n%s", before, runtime.NumGoroutine(),
					onlyProviderStacks(string(buf[:n])))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func onlyProviderStacks(all string) string {
	var out []string
	for _, g := range strings.Split(all, "\n\n") {
		if strings.Contains(g, "flagsync/provider") || strings.Contains(g, "go-redis") || strings.Contains(g, "fsnotify") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

func tempPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "flags.json")
}

// memTempDir is a temporary directory on tmpfs when there is one: the hot-reload
// tests write a file 1000 times, and fsync on a disk would dominate their run time.
func memTempDir(t testing.TB) string {
	t.Helper()
	if dir, err := os.MkdirTemp("/dev/shm", "flagsync-provider-test-*"); err == nil {
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		return dir
	}
	return t.TempDir()
}

func mustRemove(t testing.TB, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}
