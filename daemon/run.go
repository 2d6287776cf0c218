// Scheduling: the first sync, the cron schedule, watched sources' changes and output
// repairs, until the context ends.

package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/flagsync/flagsync/sources"
)

// Run fetches every source now, then on the schedule, and a watched source shortly
// after its watch signals (each with its own watchDebounce); it runs the expiry
// cleanup on cleanup.schedule, until ctx is done. Each source fetches on its own
// goroutine, one fetch at a time (a signal during a fetch causes one follow-up
// fetch), and each finished fetch publishes with the others' last good results.
// Publishes are single-flight; one in progress when ctx ends still finishes.
func (d *Daemon) Run(ctx context.Context) error {
	sched, err := cronParser.Parse(d.cfg.Schedule)
	if err != nil {
		return fmt.Errorf("schedule: %w", err)
	}
	cleanupSched, err := cronParser.Parse(d.lc.Schedule)
	if err != nil {
		return fmt.Errorf("cleanup.schedule: %w", err)
	}
	ticks := make(chan struct{}, 1)
	cleanups := make(chan struct{}, 1)
	signal := func(ch chan struct{}) func() {
		return func() {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	c := cron.New(cron.WithLocation(time.UTC))
	c.Schedule(sched, cron.FuncJob(signal(ticks)))
	c.Schedule(cleanupSched, cron.FuncJob(signal(cleanups)))
	c.Start()
	defer c.Stop()

	debounces := make([]time.Duration, len(d.srcs))
	for i, s := range d.srcs {
		debounces[i] = s.cfg.WatchDebounce
	}
	deb := newDebouncer(debounces, leadingEdges(d.srcs))
	wctx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopWatch(); wg.Wait() }()
	for i, s := range d.srcs {
		if w, ok := s.src.(sources.Watcher); ok {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = w.Watch(wctx, deb.changed(i))
			}()
		}
	}

	repairs := make(chan struct{}, 1)
	d.watchOutputs(wctx, &wg, signal(repairs))
	// Each source fetches on its own goroutine; every finished fetch publishes with
	// the latest result of every source, so a hung store delays nobody else.
	fctx, stopFetch := context.WithCancel(ctx)
	fetches := newFetcher(fctx, d)
	defer func() { stopFetch(); fetches.wait() }()

	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	backoff := time.Duration(0)

	afterSync := func() {
		if d.lagging() {
			if backoff == 0 {
				backoff = 500 * time.Millisecond
			} else {
				backoff = min(2*backoff, 30*time.Second)
			}
			retry.Reset(backoff)
		} else {
			backoff = 0
			retry.Stop()
		}
	}
	// watchFetch fetches the watched sources that are due and re-arms the timer for
	// the sources still waiting out their debounce. A signal that arrives during a
	// source's fetch makes exactly one follow-up fetch of that source.
	watchFetch := func() {
		due, next := deb.fire(time.Now())
		for _, i := range due {
			fetches.start(i)
		}
		debounce.Stop()
		if next >= 0 {
			debounce.Reset(next)
		}
	}
	fetches.startAll()
	for {
		select {
		case <-ctx.Done():
			return nil
		case i := <-fetches.done:
			fetches.finished(i)
			fetches.drain()
			if d.allFetched() {
				_, _ = d.publishLatest(ctx)
				afterSync()
			}
		case <-deb.wake:
			deb.take(time.Now())
			watchFetch()
		case <-debounce.C:
			watchFetch()
		case <-ticks:
			fetches.startAll()
		case <-cleanups:
			_, _ = d.Cleanup(ctx)
		case <-repairs:
			// An output changed behind our back. When it was another process's
			// `sync --once --force`, the guard state file holds its release: publishing
			// the latest results takes it; otherwise the publish is unchanged and its
			// catch-up rewrites what the output lost.
			if d.allFetched() {
				_, _ = d.publishLatest(ctx)
			} else {
				d.syncMu.Lock()
				_ = d.catchUp(ctx)
				d.syncMu.Unlock()
			}
			afterSync()
		case <-retry.C:
			d.syncMu.Lock()
			_ = d.catchUp(ctx)
			d.syncMu.Unlock()
			afterSync()
		}
	}
}

// allFetched tells whether every source has finished at least one fetch (good or
// failed): until then the Run loop does not publish, so a start does not report
// every source that is merely still answering as never fetched.
func (d *Daemon) allFetched() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.srcs {
		if s.last == nil && s.lastErrorAt.IsZero() {
			return false
		}
	}
	return true
}
