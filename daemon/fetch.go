package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// fetchFlight is one fetch of one source in progress. Fetches of a source never
// overlap: a caller that finds one in flight waits for it instead of starting another
// (a hung store then costs one timeout, not one per caller).
type fetchFlight struct {
	done chan struct{}
	err  error
}

// fetchOne fetches s with its own timeout and records the outcome: a good result
// replaces s.last, a failure keeps it. If s is already being fetched it waits for
// that fetch (or ctx) and returns its error.
func (d *Daemon) fetchOne(ctx context.Context, s *sourceState) error {
	d.mu.Lock()
	if f := s.flight; f != nil {
		d.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return fmt.Errorf("source %s: %w", s.cfg.Name, ctx.Err())
		}
	}
	f := &fetchFlight{done: make(chan struct{})}
	s.flight = f
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		s.flight = nil
		d.mu.Unlock()
		close(f.done)
	}()

	fctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	res, err := s.src.Fetch(fctx)
	now := d.now()
	if err == nil && res == nil {
		err = errors.New("fetch returned no result")
	}
	if err != nil {
		if fctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("timed out after %s: %w", s.cfg.Timeout, err)
		}
		f.err = fmt.Errorf("source %s: %w", s.cfg.Name, err)
		d.metrics.SourceErrors.WithLabelValues(s.cfg.Name).Inc()
		d.log.Warn("source fetch failed; keeping its last good result", "source", s.cfg.Name, "err", err)
		d.mu.Lock()
		s.lastError, s.lastErrorAt = err.Error(), now.UTC()
		d.mu.Unlock()
		return f.err
	}
	d.metrics.SourceLastSuccess.WithLabelValues(s.cfg.Name).Set(float64(now.UnixMilli()) / 1000)
	d.mu.Lock()
	s.last, s.lastSuccess, s.lastError = res, now.UTC(), ""
	d.mu.Unlock()
	return nil
}

// fetchAll fetches every source concurrently (each with its own timeout) and waits
// for all of them; `flagsync sync --once` and POST /api/v1/sync use it. The daemon's
// Run loop fetches each source on its own instead (runFetcher).
func (d *Daemon) fetchAll(ctx context.Context) []error {
	errs := make([]error, len(d.srcs))
	var wg sync.WaitGroup
	for i, s := range d.srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.fetchOne(ctx, s)
		}()
	}
	wg.Wait()
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}

// fetcher runs the fetches of the Run loop: each source on its own goroutine, at most
// one at a time per source (a request while one is in flight runs once more after
// it), so a hung or slow source never delays the others. Every finished fetch is
// reported on done; the loop then publishes with the latest result of every source.
type fetcher struct {
	d        *Daemon
	ctx      context.Context
	wg       sync.WaitGroup
	inflight []bool // loop goroutine only
	again    []bool
	done     chan int
}

func newFetcher(ctx context.Context, d *Daemon) *fetcher {
	n := len(d.srcs)
	return &fetcher{d: d, ctx: ctx, inflight: make([]bool, n), again: make([]bool, n), done: make(chan int, n)}
}

// start fetches source i now, or once more after its fetch in flight.
func (f *fetcher) start(i int) {
	if f.inflight[i] {
		f.again[i] = true
		return
	}
	f.inflight[i] = true
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		_ = f.d.fetchOne(f.ctx, f.d.srcs[i]) // the outcome is in the source state
		f.done <- i
	}()
}

// startAll fetches every source.
func (f *fetcher) startAll() {
	for i := range f.d.srcs {
		f.start(i)
	}
}

// finished records that source i's fetch ended (a value received from done) and
// starts the follow-up fetch if one was asked for meanwhile.
func (f *fetcher) finished(i int) {
	f.inflight[i] = false
	if f.again[i] {
		f.again[i] = false
		f.start(i)
	}
}

// drain takes the other fetches that already finished, so one publish covers them.
func (f *fetcher) drain() {
	for {
		select {
		case i := <-f.done:
			f.finished(i)
		default:
			return
		}
	}
}

// wait waits for the fetches in flight (their context is cancelled by then).
func (f *fetcher) wait() { f.wg.Wait() }
