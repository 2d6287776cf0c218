package daemon

import (
	"sync/atomic"
	"time"
)

// typeWatchDebounce is the watch timing per source type when neither the source
// entry nor the top-level config sets watchDebounce. Files get 100ms of quiet because
// editors and programs write in bursts (truncate, write, write, rename). Consul gets a
// 100ms coalescing window (see leadingEdgeTypes). Types not listed use
// DefaultWatchDebounce.
var typeWatchDebounce = map[string]time.Duration{
	"file":   100 * time.Millisecond,
	"consul": 100 * time.Millisecond,
}

// leadingEdgeTypes are the source types whose change signals sync on the leading
// edge: the first change after a quiet window syncs at once, and further changes
// within watchDebounce of that sync are coalesced into one sync at the window's end
// (like consul-template's wait, without delaying a lone change). This suits a source
// whose every signal comes with a complete, consistent answer (a Consul blocking
// query); a file signal may come in the middle of a write, so files wait for quiet.
var leadingEdgeTypes = map[string]bool{"consul": true}

// leadingEdges tells, per source, whether it syncs on the leading edge.
func leadingEdges(srcs []*sourceState) []bool {
	out := make([]bool, len(srcs))
	for i, s := range srcs {
		out[i] = leadingEdgeTypes[s.cfg.Type]
	}
	return out
}

// sourceDebounce resolves a source's watchDebounce: its own entry, else the top-level
// key when given, else its type's default.
func (c *Config) sourceDebounce(sc SourceConfig) time.Duration {
	if sc.watchDebounce != nil {
		return *sc.watchDebounce
	}
	if c.watchDebounceSet {
		return c.WatchDebounce
	}
	if d, ok := typeWatchDebounce[sc.Type]; ok {
		return d
	}
	return DefaultWatchDebounce
}

// debouncer tracks the change signals of each watched source and tells when a sync is
// due. A trailing-edge source is due debounce after its last signal (quiescence), but
// never later than 10×debounce after its first one, so a constantly changing source
// still syncs. A leading-edge source is due at once unless it synced less than
// debounce ago; then it is due when that window ends, so a burst becomes one sync
// for the first change and one for the rest. A source with debounce 0 is due at once.
// Only the Run loop uses it (not concurrent), except pending, which watchers set.
type debouncer struct {
	debounce []time.Duration
	leading  []bool
	pending  []atomic.Bool // set by the watcher, taken by the loop
	armed    []bool
	first    []time.Time
	due      []time.Time
	window   []time.Time // leading edge: end of the window opened by the last sync
	wake     chan struct{}
}

// newDebouncer tracks sources with these debounces; leading (nil: none) marks the
// leading-edge sources.
func newDebouncer(debounce []time.Duration, leading []bool) *debouncer {
	n := len(debounce)
	if leading == nil {
		leading = make([]bool, n)
	}
	return &debouncer{debounce: debounce, leading: leading, pending: make([]atomic.Bool, n), armed: make([]bool, n),
		first: make([]time.Time, n), due: make([]time.Time, n), window: make([]time.Time, n), wake: make(chan struct{}, 1)}
}

// changed returns the non-blocking callback for source i's watcher.
func (b *debouncer) changed(i int) func() {
	return func() {
		b.pending[i].Store(true)
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

// take folds the pending signals into the timers at time now.
func (b *debouncer) take(now time.Time) {
	for i := range b.pending {
		if !b.pending[i].Swap(false) {
			continue
		}
		switch {
		case b.leading[i]:
			if !b.armed[i] {
				b.armed[i], b.first[i] = true, now
				b.due[i] = now
				if now.Before(b.window[i]) {
					b.due[i] = b.window[i]
				}
			}
		case !b.armed[i]:
			b.armed[i], b.first[i] = true, now
			b.due[i] = now.Add(b.debounce[i])
		case now.Sub(b.first[i]) < 10*b.debounce[i]:
			b.due[i] = now.Add(b.debounce[i])
		}
	}
}

// fire disarms every source that is due at now and returns them; next is how long
// until the earliest still-armed source is due (-1 when none is armed). Sources not
// yet due stay armed: a file in mid-burst still gets its own fetch. A leading-edge
// source that fires opens its coalescing window.
func (b *debouncer) fire(now time.Time) (due []int, next time.Duration) {
	next = -1
	for i := range b.armed {
		if !b.armed[i] {
			continue
		}
		if !now.Before(b.due[i]) {
			b.armed[i] = false
			b.window[i] = now.Add(b.debounce[i])
			due = append(due, i)
			continue
		}
		if wait := b.due[i].Sub(now); next < 0 || wait < next {
			next = wait
		}
	}
	return due, next
}
