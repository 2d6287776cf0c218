package daemon

import (
	"sync"

	"github.com/flagsync/flagsync/flagset"
)

// Feed announces every newly served flag set to listeners that outlive config
// reloads (the flagd sync port): the Server owns one, and each daemon it serves
// offers its set there when it publishes. Waiting on it never slows a publish: a
// publish only closes a channel, and a listener that was busy sees just the latest set.
type Feed struct {
	mu      sync.Mutex
	set     *flagset.Set
	changed chan struct{}
	// onChange hears each new set as it is offered, in order; it must not block
	// (OFREP's event hub only replaces each stream's pending event).
	onChange func(*flagset.Set)
}

func newFeed(onChange func(*flagset.Set)) *Feed {
	return &Feed{changed: make(chan struct{}), onChange: onChange}
}

// Current is the flag set served now (nil before the first) and a channel closed when
// it is replaced.
func (f *Feed) Current() (*flagset.Set, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.set, f.changed
}

// offer makes set the current one, waking the listeners when it differs.
func (f *Feed) offer(set *flagset.Set) {
	if set == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if set == f.set {
		return
	}
	f.set = set
	close(f.changed)
	f.changed = make(chan struct{})
	if f.onChange != nil {
		f.onChange(set)
	}
}
