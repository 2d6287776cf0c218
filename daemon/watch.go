package daemon

import (
	"sync/atomic"
	"time"
)

// typeWatchDebounce is the quiet time per source type when neither the source entry
// nor the top-level config sets watchDebounce. Files get 100ms because editors write
// in bursts (truncate, write, rename); Consul gets 0 because one blocking-query answer
// already covers a burst and the watch queries at most every 50ms. Types not listed
// use DefaultWatchDebounce.
var typeWatchDebounce = map[string]time.Duration{
	"file":   100 * time.Millisecond,
	"consul": 0,
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
// due: debounce after a source's last signal (quiescence), but never later than
// 10×debounce after its first one, so a constantly changing source still syncs. A
// source with debounce 0 is due at once. Only the Run loop uses it (not concurrent),
// except pending, which watchers set.
type debouncer struct {
	debounce []time.Duration
	pending  []atomic.Bool // set by the watcher, taken by the loop
	armed    []bool
	first    []time.Time
	due      []time.Time
	wake     chan struct{}
}

func newDebouncer(debounce []time.Duration) *debouncer {
	n := len(debounce)
	return &debouncer{debounce: debounce, pending: make([]atomic.Bool, n), armed: make([]bool, n),
		first: make([]time.Time, n), due: make([]time.Time, n), wake: make(chan struct{}, 1)}
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
		if !b.armed[i] {
			b.armed[i], b.first[i] = true, now
			b.due[i] = now.Add(b.debounce[i])
		} else if now.Sub(b.first[i]) < 10*b.debounce[i] {
			b.due[i] = now.Add(b.debounce[i])
		}
	}
}

// fire disarms every source that is due at now and returns them; next is how long
// until the earliest still-armed source is due (-1 when none is armed). Sources not
// yet due stay armed: a file in mid-burst still gets its own fetch.
func (b *debouncer) fire(now time.Time) (due []int, next time.Duration) {
	next = -1
	for i := range b.armed {
		if !b.armed[i] {
			continue
		}
		if !now.Before(b.due[i]) {
			b.armed[i] = false
			due = append(due, i)
			continue
		}
		if wait := b.due[i].Sub(now); next < 0 || wait < next {
			next = wait
		}
	}
	return due, next
}
