package daemon

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/sources"
)

func TestSourceWatchDebounce(t *testing.T) {
	srcs := `
sources:
  - {name: git, type: file, path: flags.yaml}
  - {name: kv, type: consul, prefix: flags/}
  - {name: kv-slow, type: consul, prefix: flags/, watchDebounce: 30ms}
  - {name: ops, type: env, prefix: OPS_}
outputs:
  file: {path: out.json}
flagSetId: prod
`
	for _, tc := range []struct {
		global string
		want   []time.Duration // git, kv, kv-slow, ops
	}{
		{"", []time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 30 * time.Millisecond, DefaultWatchDebounce}},
		{"watchDebounce: 10ms\n", []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond, 10 * time.Millisecond}},
	} {
		c, err := ParseConfig([]byte(tc.global+srcs), lookupFrom(nil))
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range tc.want {
			if got := c.Sources[i].WatchDebounce; got != want {
				t.Errorf("global %q: %s watchDebounce = %v, want %v", tc.global, c.Sources[i].Name, got, want)
			}
		}
	}
	_, err := ParseConfig([]byte(strings.Replace(srcs, "watchDebounce: 30ms", "watchDebounce: -1s", 1)), lookupFrom(nil))
	if err == nil || !strings.Contains(err.Error(), "sources[2].watchDebounce") {
		t.Errorf("negative source watchDebounce: %v", err)
	}
}

func TestDebouncer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newDebouncer([]time.Duration{0, 100 * time.Millisecond}, nil)
	b.changed(0)()
	b.changed(1)()
	b.take(t0)
	due, next := b.fire(t0)
	if !slices.Equal(due, []int{0}) || next != 100*time.Millisecond {
		t.Fatalf("debounce 0 must be due at once, the other in 100ms: due %v next %v", due, next)
	}
	// Source 1 keeps changing every 50ms: quiescence never comes, the 10×debounce cap does.
	at := t0
	fired := time.Time{}
	for i := 1; i <= 40 && fired.IsZero(); i++ {
		at = t0.Add(time.Duration(i) * 50 * time.Millisecond)
		if due, _ := b.fire(at); slices.Equal(due, []int{1}) {
			fired = at
			break
		}
		b.changed(1)()
		b.take(at)
	}
	if fired.IsZero() || fired.Sub(t0) > 1100*time.Millisecond {
		t.Fatalf("a constantly changing source synced at %v after its first change, want by 1.1s", fired.Sub(t0))
	}
	if due, next := b.fire(fired); len(due) > 0 || next != -1 {
		t.Errorf("after firing nothing is armed: due %v next %v", due, next)
	}
}

// TestDebouncerLeadingEdge: a leading-edge source syncs its first change at once and
// coalesces the changes within its window into one sync at the window's end; a lone
// change after the window syncs at once again.
func TestDebouncerLeadingEdge(t *testing.T) {
	const window = 100 * time.Millisecond
	t0 := time.Unix(1000, 0)
	b := newDebouncer([]time.Duration{window}, []bool{true})
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	signal := func(at time.Time) {
		b.changed(0)()
		b.take(at)
	}
	signal(ms(0))
	if due, _ := b.fire(ms(0)); len(due) == 0 {
		t.Fatal("the first change must sync at once")
	}
	var syncs []time.Time
	for n := 10; n <= 250; n += 10 { // a burst: a change every 10ms for 250ms
		signal(ms(n))
		if due, next := b.fire(ms(n)); len(due) > 0 {
			syncs = append(syncs, ms(n))
		} else if next <= 0 {
			t.Fatalf("at %dms: armed with next %v", n, next)
		}
	}
	// Windows open at 0 (the first sync), 100 and 200: the burst syncs at 100 and 200.
	want := []time.Time{ms(100), ms(200)}
	if !slices.Equal(syncs, want) {
		t.Fatalf("syncs during the burst at %v, want %v", syncs, want)
	}
	if due, next := b.fire(ms(300)); len(due) == 0 || next != -1 {
		t.Fatalf("the burst's tail must sync when the window ends: due %v next %v", due, next)
	}
	signal(ms(1000))
	if due, _ := b.fire(ms(1000)); len(due) == 0 {
		t.Fatal("a lone change after a quiet window must sync at once")
	}
}

// watchFake is a watched source whose fetches the test can hold.
type watchFake struct {
	name    string
	fetches atomic.Int32
	entered chan struct{} // receives on each Fetch
	gate    chan struct{} // Fetch waits on it while hold is set
	hold    atomic.Bool
	changed chan func()
}

func (w *watchFake) Name() string { return w.name }
func (w *watchFake) Fetch(ctx context.Context) (*sources.Result, error) {
	w.fetches.Add(1)
	select {
	case w.entered <- struct{}{}:
	default:
	}
	if w.hold.Load() {
		<-w.gate
	}
	dv := "on"
	return &sources.Result{Definitions: map[string]*flagset.Flag{
		fmt.Sprintf("f%d", w.fetches.Load()): {State: flagset.Enabled, Variants: map[string]any{"on": true}, DefaultVariant: &dv},
	}}, nil
}
func (w *watchFake) Watch(ctx context.Context, changed func()) error {
	w.changed <- changed
	<-ctx.Done()
	return ctx.Err()
}

var watchFakes sync.Map

func init() {
	sourceTypes["watchfake"] = func(name string, node *yaml.Node, deps SourceDeps) (sources.Source, error) {
		w, ok := watchFakes.Load(name)
		if !ok {
			return nil, fmt.Errorf("no watchfake %q", name)
		}
		return w.(*watchFake), nil
	}
}

// TestWatchSingleFlight: with watchDebounce 0 a change syncs at once, and any number
// of changes during that sync cause exactly one follow-up sync.
func TestWatchSingleFlight(t *testing.T) {
	w := &watchFake{name: "wf-" + t.Name(), entered: make(chan struct{}, 1), gate: make(chan struct{}), changed: make(chan func(), 1)}
	watchFakes.Store(w.name, w)
	h := newHarness(t, hopts{extraSrc: fmt.Sprintf("  - {name: %s, type: watchfake, watchDebounce: 0s}\n", w.name),
		extra: "schedule: \"@every 1h\"\n"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	changed := <-w.changed
	waitFor(t, "first publish", func() bool { return h.d.Ready() })
	<-w.entered // the initial sync's fetch
	w.hold.Store(true)
	changed()
	select {
	case <-w.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("a change with watchDebounce 0 did not start a sync")
	}
	for range 5 {
		changed()
	}
	w.hold.Store(false)
	w.gate <- struct{}{}
	select {
	case <-w.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("changes during a sync caused no follow-up sync")
	}
	waitFor(t, "follow-up published", func() bool { _, ok := h.published().Flag("f3"); return ok })
	// Give a wrongly queued third sync time to show up.
	time.Sleep(300 * time.Millisecond)
	if n := w.fetches.Load(); n != 3 {
		t.Errorf("fetches = %d, want 3 (initial, change, one follow-up)", n)
	}
}
