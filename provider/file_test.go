package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/transport"
)

const (
	eventWait = 5 * time.Second
	never     = time.Hour // a poll interval that proves a change came from a notification
)

func TestFileThroughClient(t *testing.T) {
	checkNoLeak(t)
	path := tempPath(t)
	newSnapshot(1).
		with("bool_flag", true).
		with("string_flag", "hello").
		with("int_flag", 42).
		with("float_flag", 1.5).
		with("object_flag", map[string]any{"a": "b"}).
		withFlag("targeted", map[string]any{"on": true, "off": false}, "off",
			`{"if": [{"==": [{"var": "email"}, "a@example.com"]}, "on", null]}`).
		writeFile(t, path)

	api := isolated.NewAPI()
	t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	p := NewFile(path)
	if err := api.SetProviderAndWait(context.Background(), p); err != nil {
		t.Fatalf("SetProviderAndWait: %v", err)
	}
	c := api.NewClient()
	ctx := context.Background()
	noCtx := openfeature.EvaluationContext{}

	b, err := c.BooleanValueDetails(ctx, "bool_flag", false, noCtx)
	if err != nil || !b.Value || b.Reason != openfeature.StaticReason || b.Variant != "v" {
		t.Fatalf("bool_flag = %+v, %v", b, err)
	}
	if b.FlagMetadata["flagSetId"] != "test" || b.FlagMetadata["version"] == "" || b.FlagMetadata["version"] == nil {
		t.Fatalf("bool_flag metadata = %v, want flagSetId and version", b.FlagMetadata)
	}
	if s, err := c.StringValue(ctx, "string_flag", "x", noCtx); err != nil || s != "hello" {
		t.Fatalf("string_flag = %q, %v", s, err)
	}
	if i, err := c.IntValue(ctx, "int_flag", 0, noCtx); err != nil || i != 42 {
		t.Fatalf("int_flag = %d, %v", i, err)
	}
	if f, err := c.FloatValue(ctx, "float_flag", 0, noCtx); err != nil || f != 1.5 {
		t.Fatalf("float_flag = %v, %v", f, err)
	}
	if o, err := c.ObjectValue(ctx, "object_flag", nil, noCtx); err != nil || o.(map[string]any)["a"] != "b" {
		t.Fatalf("object_flag = %v, %v", o, err)
	}

	hit := openfeature.NewEvaluationContext("user-1", map[string]any{"email": "a@example.com"})
	d, err := c.BooleanValueDetails(ctx, "targeted", false, hit)
	if err != nil || !d.Value || d.Reason != openfeature.TargetingMatchReason || d.Variant != "on" {
		t.Fatalf("targeted (match) = %+v, %v", d, err)
	}
	miss := openfeature.NewEvaluationContext("user-2", map[string]any{"email": "b@example.com"})
	d, err = c.BooleanValueDetails(ctx, "targeted", true, miss)
	if err != nil || d.Value || d.Reason != openfeature.DefaultReason || d.Variant != "off" {
		t.Fatalf("targeted (no match) = %+v, %v", d, err)
	}

	nf, err := c.BooleanValueDetails(ctx, "missing", true, noCtx)
	if err == nil || !nf.Value || nf.ErrorCode != openfeature.FlagNotFoundCode || nf.Reason != openfeature.ErrorReason {
		t.Fatalf("missing flag = %+v, %v; want the default with FLAG_NOT_FOUND", nf, err)
	}
	tm, err := c.IntValueDetails(ctx, "string_flag", 7, noCtx)
	if err == nil || tm.Value != 7 || tm.ErrorCode != openfeature.TypeMismatchCode {
		t.Fatalf("type mismatch = %+v, %v; want the default with TYPE_MISMATCH", tm, err)
	}
}

func TestFileReloadEmitsConfigurationChanged(t *testing.T) {
	checkNoLeak(t)
	path := tempPath(t)
	newSnapshot(1).with("a", 1).with("b", 1).with("c", 1).writeFile(t, path)
	p := NewFile(path, WithPollInterval(never))
	if err := startDirect(t, p); err != nil {
		t.Fatalf("init: %v", err)
	}
	newSnapshot(2).with("a", 1).with("b", 2).with("d", 1).writeFile(t, path)
	ev := nextEvent(t, p.EventChannel(), openfeature.ProviderConfigChange, eventWait)
	if got, want := fmt.Sprint(ev.FlagChanges), "[b c d]"; got != want {
		t.Fatalf("FlagChanges = %s, want %s", got, want)
	}
	if v := intValue(p, "b"); v.Value != 2 {
		t.Fatalf("b = %+v after reload, want 2", v)
	}
	if v := intValue(p, "c"); v.ResolutionDetail().ErrorCode != openfeature.FlagNotFoundCode {
		t.Fatalf("c = %+v after removal, want FLAG_NOT_FOUND", v)
	}
	// Rewriting the same content changes no flag: no event.
	newSnapshot(2).with("a", 1).with("b", 2).with("d", 1).writeFile(t, path)
	noEvent(t, p.EventChannel(), 300*time.Millisecond)
}

func TestFileBadSnapshotKeepsLastGood(t *testing.T) {
	checkNoLeak(t)
	path := tempPath(t)
	newSnapshot(1).with("a", 1).writeFile(t, path)
	p := NewFile(path, WithPollInterval(never))
	if err := startDirect(t, p); err != nil {
		t.Fatalf("init: %v", err)
	}
	if err := transport.WriteFileAtomic(path, []byte(`{"flags": {"a": `), 0o644); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, p.EventChannel(), openfeature.ProviderError, eventWait)
	if ev.ErrorCode != openfeature.GeneralCode || ev.Message == "" {
		t.Fatalf("error event = %+v", ev)
	}
	if v := intValue(p, "a"); v.Value != 1 || v.Error() != nil {
		t.Fatalf("a = %+v while the file is bad, want the last good value 1", v)
	}
	if p.Status() != openfeature.ErrorState {
		t.Fatalf("status = %s, want ERROR", p.Status())
	}
	newSnapshot(2).with("a", 2).writeFile(t, path)
	nextEvent(t, p.EventChannel(), openfeature.ProviderReady, eventWait)
	ev = nextEvent(t, p.EventChannel(), openfeature.ProviderConfigChange, eventWait)
	if fmt.Sprint(ev.FlagChanges) != "[a]" {
		t.Fatalf("FlagChanges = %v, want [a]", ev.FlagChanges)
	}
	if v := intValue(p, "a"); v.Value != 2 {
		t.Fatalf("a = %+v after recovery, want 2", v)
	}
}

func TestFileInitMissingThenAppears(t *testing.T) {
	checkNoLeak(t)
	path := tempPath(t)
	api := isolated.NewAPI()
	t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	ready := make(chan openfeature.EventDetails, 4)
	onReady := func(d openfeature.EventDetails) { ready <- d }
	api.AddHandler(openfeature.ProviderReady, &onReady)

	p := NewFile(path, WithInitTimeout(200*time.Millisecond), WithPollInterval(never))
	start := time.Now()
	err := api.SetProviderAndWait(context.Background(), p)
	if err == nil {
		t.Fatal("SetProviderAndWait succeeded without a file")
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Fatalf("init blocked %s, want about the 200ms init timeout", waited)
	}
	c := api.NewClient()
	d, err := c.BooleanValueDetails(context.Background(), "a", true, openfeature.EvaluationContext{})
	if err == nil || !d.Value || d.ErrorCode != openfeature.ProviderNotReadyCode {
		t.Fatalf("evaluation before any snapshot = %+v, %v; want the default with PROVIDER_NOT_READY", d, err)
	}

	newSnapshot(1).with("a", false).writeFile(t, path)
	select {
	case <-ready:
	case <-time.After(eventWait):
		t.Fatal("no PROVIDER_READY after the file appeared")
	}
	d, err = c.BooleanValueDetails(context.Background(), "a", true, openfeature.EvaluationContext{})
	if err != nil || d.Value {
		t.Fatalf("a = %+v, %v after the file appeared, want false", d, err)
	}
	if c.State() != openfeature.ReadyState {
		t.Fatalf("client state = %s, want READY", c.State())
	}
}

func TestFileInitBadSnapshotFailsFast(t *testing.T) {
	checkNoLeak(t)
	path := tempPath(t)
	if err := transport.WriteFileAtomic(path, []byte(`{"flags": `), 0o644); err != nil {
		t.Fatal(err)
	}
	p := NewFile(path, WithInitTimeout(time.Minute), WithPollInterval(never))
	start := time.Now()
	err := startDirect(t, p)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("init over a bad file = %v, want an error naming %s", err, path)
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Fatalf("init waited %s for a snapshot it had already rejected", waited)
	}
	if r := p.BooleanEvaluation(context.Background(), "a", true, nil); r.ResolutionDetail().ErrorCode != openfeature.ProviderNotReadyCode {
		t.Fatalf("evaluation = %+v, want PROVIDER_NOT_READY", r)
	}
	newSnapshot(1).with("a", false).writeFile(t, path)
	nextEvent(t, p.EventChannel(), openfeature.ProviderReady, eventWait)
	if r := p.BooleanEvaluation(context.Background(), "a", true, nil); r.Value || r.Error() != nil {
		t.Fatalf("a = %+v after the file was fixed, want false", r)
	}
}

func TestFileStaleWhileMissing(t *testing.T) {
	checkNoLeak(t)
	path := tempPath(t)
	newSnapshot(1).with("a", 1).writeFile(t, path)
	p := NewFile(path, WithPollInterval(20*time.Millisecond), WithStaleAfter(200*time.Millisecond))
	if err := startDirect(t, p); err != nil {
		t.Fatalf("init: %v", err)
	}
	mustRemove(t, path)
	ev := nextEvent(t, p.EventChannel(), openfeature.ProviderStale, eventWait)
	if ev.Message == "" {
		t.Fatal("stale event without a message")
	}
	if v := intValue(p, "a"); v.Value != 1 {
		t.Fatalf("a = %+v while stale, want the last good value", v)
	}
	newSnapshot(2).with("a", 2).writeFile(t, path)
	nextEvent(t, p.EventChannel(), openfeature.ProviderReady, eventWait)
	eventually(t, eventWait, "a == 2", func() bool { return intValue(p, "a").Value == 2 })
}

func TestFileMaxAge(t *testing.T) {
	checkNoLeak(t)
	path := tempPath(t)
	old := newSnapshot(1).with("a", 1)
	old.generatedAt = time.Now().Add(-time.Hour)
	old.writeFile(t, path)
	p := NewFile(path, WithPollInterval(never), WithMaxAge(time.Minute))
	if err := startDirect(t, p); err != nil {
		t.Fatalf("init: %v", err)
	}
	nextEvent(t, p.EventChannel(), openfeature.ProviderStale, eventWait)
	if v := intValue(p, "a"); v.Value != 1 {
		t.Fatalf("a = %+v while stale, want 1", v)
	}
	newSnapshot(2).with("a", 2).writeFile(t, path)
	nextEvent(t, p.EventChannel(), openfeature.ProviderReady, eventWait)
}

// TestFileConfigMapSymlinkSwap replays what the kubelet does to a ConfigMap volume:
// flags.json -> ..data/flags.json, ..data -> ..<timestamp>, and an update swaps the
// ..data link by renaming a new link over it.
func TestFileConfigMapSymlinkSwap(t *testing.T) {
	checkNoLeak(t)
	dir := t.TempDir()
	writeVersion := func(name string, s *testSnapshot) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		s.writeFile(t, filepath.Join(dir, name, "flags.json"))
	}
	writeVersion("..2026_01", newSnapshot(1).with("a", 1))
	if err := os.Symlink("..2026_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/flags.json", filepath.Join(dir, "flags.json")); err != nil {
		t.Fatal(err)
	}
	p := NewFile(filepath.Join(dir, "flags.json"), WithPollInterval(never))
	if err := startDirect(t, p); err != nil {
		t.Fatalf("init: %v", err)
	}
	if v := intValue(p, "a"); v.Value != 1 {
		t.Fatalf("a = %+v, want 1", v)
	}

	writeVersion("..2026_02", newSnapshot(2).with("a", 2))
	if err := os.Symlink("..2026_02", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "..2026_01")); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, p.EventChannel(), openfeature.ProviderConfigChange, eventWait)
	if fmt.Sprint(ev.FlagChanges) != "[a]" {
		t.Fatalf("FlagChanges = %v", ev.FlagChanges)
	}
	if v := intValue(p, "a"); v.Value != 2 {
		t.Fatalf("a = %+v after the swap, want 2", v)
	}
}

// TestFileHotReload replaces the file 1000 times while 8 goroutines evaluate. Every
// flag of snapshot i has value i, so a torn read would show up as a later flag
// holding a smaller value than an earlier one, or a value going backwards.
func TestFileHotReload(t *testing.T) {
	checkNoLeak(t)
	path := filepath.Join(memTempDir(t), "flags.json")
	hotReloadSnapshot(0).writeFile(t, path)
	p := NewFile(path, WithPollInterval(50*time.Millisecond))
	if err := startDirect(t, p); err != nil {
		t.Fatalf("init: %v", err)
	}
	drainEvents(t, p)

	const n = 1000
	writes := make([][]byte, n+1)
	for i := 1; i <= n; i++ {
		writes[i], _ = hotReloadSnapshot(i).encode(t)
	}
	runEvaluators(t, p, n, func() {
		for i := 1; i <= n; i++ {
			if err := transport.WriteFileAtomic(path, writes[i], 0o644); err != nil {
				t.Errorf("write %d: %v", i, err)
				return
			}
		}
	})
}

// drainEvents consumes events in the background until the provider shuts down.
func drainEvents(t *testing.T, p *Provider) {
	ch := p.EventChannel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for range ch {
		}
	})
	// Cleanups run last-in first-out: shut down (closing the channel), then wait.
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { _ = p.ShutdownWithContext(context.Background()) })
}

// hotReloadKeys are the flags of the hot-reload tests; every flag of
// hotReloadSnapshot(i) has value i.
var hotReloadKeys = []string{"f0", "f1", "f2", "f3"}

func hotReloadSnapshot(i int) *testSnapshot {
	s := newSnapshot(int64(i))
	for _, k := range hotReloadKeys {
		s.with(k, i)
	}
	return s
}

// runEvaluators runs 8 evaluating goroutines over hotReloadKeys while write runs, then
// checks that every flag reaches final.
func runEvaluators(t *testing.T, p *Provider, final int64, write func()) {
	t.Helper()
	keys := hotReloadKeys
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	evals := make([]int, 8)
	for g := range 8 {
		wg.Go(func() {
			ctx := context.Background()
			var last int64
			for {
				select {
				case <-stop:
					return
				default:
				}
				var prev int64 = -1
				for _, k := range keys {
					r := p.IntEvaluation(ctx, k, -1, nil)
					if r.Error() != nil || r.Reason != openfeature.StaticReason {
						errs <- fmt.Sprintf("%s: %+v", k, r)
						return
					}
					if r.Value < prev || r.Value < last {
						errs <- fmt.Sprintf("%s = %d after %d (previous round %d): torn or backwards read", k, r.Value, prev, last)
						return
					}
					prev = r.Value
				}
				last = prev
				evals[g]++
				// 8 spinning readers on a few cores would starve the writer.
				runtime.Gosched()
			}
		})
	}
	write()
	eventually(t, 10*time.Second, fmt.Sprintf("every flag == %d", final), func() bool {
		for _, k := range keys {
			if intValue(p, k).Value != final {
				return false
			}
		}
		return true
	})
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for g, n := range evals {
		if n == 0 {
			t.Errorf("evaluator %d never completed a round", g)
		}
	}
	if s := p.Snapshot(); s == nil || s.Generation() != final {
		t.Errorf("final snapshot generation = %v, want %d", s.Generation(), final)
	}
}

func TestNotReadyWithoutInit(t *testing.T) {
	p := NewFile(tempPath(t))
	r := p.BooleanEvaluation(context.Background(), "a", true, nil)
	if !r.Value || r.ResolutionDetail().ErrorCode != openfeature.ProviderNotReadyCode || r.Reason != openfeature.ErrorReason {
		t.Fatalf("evaluation before init = %+v, want the default with PROVIDER_NOT_READY", r)
	}
	if p.Status() != openfeature.NotReadyState {
		t.Fatalf("status = %s", p.Status())
	}
	p.Shutdown()
	if err := p.Init(openfeature.EvaluationContext{}); err != ErrShutdown {
		t.Fatalf("Init after Shutdown = %v, want ErrShutdown", err)
	}
	if _, ok := <-p.EventChannel(); ok {
		t.Fatal("event channel open after Shutdown")
	}
}

func TestDisabledAndNoDefaultVariant(t *testing.T) {
	checkNoLeak(t)
	path := tempPath(t)
	s := newSnapshot(1).withFlag("nodefault", map[string]any{"x": "X"}, "", "")
	s.withFlag("off", map[string]any{"x": "X"}, "x", "")
	s.flags["off"].State = flagset.Disabled
	s.writeFile(t, path)
	p := NewFile(path, WithPollInterval(never))
	if err := startDirect(t, p); err != nil {
		t.Fatalf("init: %v", err)
	}
	ctx := context.Background()
	if r := p.StringEvaluation(ctx, "off", "dflt", nil); r.Value != "dflt" || r.Reason != openfeature.DisabledReason || r.Error() != nil || r.Variant != "" {
		t.Fatalf("disabled = %+v", r)
	}
	if r := p.StringEvaluation(ctx, "nodefault", "dflt", nil); r.Value != "dflt" || r.Reason != openfeature.DefaultReason || r.Error() != nil {
		t.Fatalf("no default variant = %+v", r)
	}
	if r := p.StringEvaluation(ctx, "off", "dflt", nil); r.FlagMetadata["flagSetId"] != "test" {
		t.Fatalf("disabled flag metadata = %v, want the set metadata", r.FlagMetadata)
	}
}

// TestFileSymlinkIntoOtherDirectory: the path is a symlink to a file in another
// directory, and that target is replaced there. Only a watch on the target's
// directory sees it (the poll interval is an hour).
func TestFileSymlinkIntoOtherDirectory(t *testing.T) {
	checkNoLeak(t)
	linkDir, targetDir := t.TempDir(), t.TempDir()
	target := filepath.Join(targetDir, "real.json")
	newSnapshot(1).with("a", 1).writeFile(t, target)
	link := filepath.Join(linkDir, "flags.json")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	p := NewFile(link, WithPollInterval(never))
	if err := startDirect(t, p); err != nil {
		t.Fatalf("init: %v", err)
	}
	newSnapshot(2).with("a", 2).writeFile(t, target)
	nextEvent(t, p.EventChannel(), openfeature.ProviderConfigChange, eventWait)
	if v := intValue(p, "a"); v.Value != 2 {
		t.Fatalf("a = %+v, want 2", v)
	}
}

// TestShutdownWithUndrainedEvents: used without the SDK and without draining the
// event channel, reloads block once its buffer is full; Shutdown must still stop
// every goroutine promptly.
func TestShutdownWithUndrainedEvents(t *testing.T) {
	checkNoLeak(t)
	path := filepath.Join(memTempDir(t), "flags.json")
	newSnapshot(1).with("a", 1).writeFile(t, path)
	p := NewFile(path, WithPollInterval(never))
	if err := p.Init(openfeature.EvaluationContext{}); err != nil {
		t.Fatalf("init: %v", err)
	}
	for i := 2; len(p.EventChannel()) < cap(p.events); i++ {
		newSnapshot(int64(i)).with("a", i).writeFile(t, path)
		if i > 10_000 {
			t.Fatalf("event buffer never filled (%d events)", len(p.EventChannel()))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.ShutdownWithContext(ctx); err != nil {
		t.Fatalf("shutdown with a full event channel: %v", err)
	}
}
