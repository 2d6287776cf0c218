// Package provider is the OpenFeature Go provider for flagsync snapshots. It reads the
// snapshot the flagsync daemon publishes, either from a JSON file (NewFile) or from
// Redis (NewRedis), keeps it fresh (change notifications plus a poll fallback) and
// evaluates flags locally with package flagset.
//
// Evaluation reads an immutable *flagset.Set through an atomic pointer, so the hot
// path takes no lock; a reload builds a new Set and swaps it in. A bad snapshot never
// replaces a good one: the provider keeps serving the last good snapshot and reports
// PROVIDER_ERROR, and PROVIDER_STALE when the source stays unreadable (see
// WithStaleAfter, WithMaxAge). The provider deliberately depends only on the
// OpenFeature SDK, go-redis and fsnotify, never on the daemon's source SDKs.
package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/flagsync/flagsync/flagset"
)

// Name is the provider name reported in openfeature.Metadata.
const Name = "flagsync"

// ErrShutdown is returned by Init after Shutdown: a provider cannot be restarted.
var ErrShutdown = errors.New("flagsync provider: shut down")

// source is where snapshots come from. run blocks until ctx is done, reporting to p
// through load, readOK and readFailed.
type source interface {
	describe() string
	run(ctx context.Context, p *Provider)
}

// Provider is an OpenFeature provider serving a flagsync snapshot. It implements
// openfeature.FeatureProvider, openfeature.ContextAwareStateHandler and
// openfeature.EventHandler. Create it with NewFile or NewRedis.
type Provider struct {
	src    source
	o      options
	log    *slog.Logger
	set    atomic.Pointer[flagset.Set]
	events chan openfeature.Event

	done      chan struct{} // closed by Shutdown; unblocks event sends
	closeOnce sync.Once
	firstLoad chan struct{} // closed by the first good load
	firstBad  chan error    // a rejected snapshot before the first good one: Init fails fast
	wg        sync.WaitGroup

	// mu guards the fields below and serialises loads and event emission, so the
	// order of events always matches the order of state changes.
	mu           sync.Mutex
	status       openfeature.State
	started      bool
	initReturned bool // events are emitted only after Init returned (the SDK emits the first READY or ERROR)
	closed       bool
	cancel       context.CancelFunc
	lastRead     time.Time // last time the source was read successfully
	lastErr      error     // last read or load error
	failing      bool      // the source is currently failing (logs once per failure streak)
}

var (
	_ openfeature.FeatureProvider          = (*Provider)(nil)
	_ openfeature.ContextAwareStateHandler = (*Provider)(nil)
	_ openfeature.EventHandler             = (*Provider)(nil)
)

func newProvider(src source, opts []Option) *Provider {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	// A source that is polled less often than it may go unread would flap to STALE.
	if o.staleAfter < 2*o.pollInterval {
		o.staleAfter = 2 * o.pollInterval
	}
	return &Provider{
		src:       src,
		o:         o,
		log:       o.logger.With("provider", Name, "source", src.describe()),
		events:    make(chan openfeature.Event, 64),
		done:      make(chan struct{}),
		firstLoad: make(chan struct{}),
		firstBad:  make(chan error, 1),
		status:    openfeature.NotReadyState,
	}
}

// Metadata names the provider.
func (p *Provider) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: Name} }

// Hooks returns no provider hooks.
func (p *Provider) Hooks() []openfeature.Hook { return nil }

// EventChannel delivers PROVIDER_READY, PROVIDER_CONFIGURATION_CHANGED, PROVIDER_ERROR
// and PROVIDER_STALE. The OpenFeature SDK drains it; code using the provider without
// the SDK must drain it too, or reloads block once its buffer is full.
func (p *Provider) EventChannel() <-chan openfeature.Event { return p.events }

// Status is the provider's own view of its state (NOT_READY, READY, ERROR or STALE).
func (p *Provider) Status() openfeature.State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// Snapshot returns the flag set being served, or nil before the first good load.
func (p *Provider) Snapshot() *flagset.Set { return p.set.Load() }

// Init is InitWithContext with a background context.
func (p *Provider) Init(evalCtx openfeature.EvaluationContext) error {
	return p.InitWithContext(context.Background(), evalCtx)
}

// InitWithContext starts watching the source and waits for the first good snapshot,
// at most the init timeout (WithInitTimeout) or until ctx is done. On timeout, or at
// once when the source holds a snapshot that cannot be loaded, it returns an error
// (the SDK then marks the provider ERROR) but keeps trying in the background and
// emits PROVIDER_READY when a snapshot arrives; until then every evaluation returns
// the caller's default with PROVIDER_NOT_READY.
func (p *Provider) InitWithContext(ctx context.Context, _ openfeature.EvaluationContext) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrShutdown
	}
	if !p.started {
		p.started = true
		runCtx, cancel := context.WithCancel(context.Background())
		p.cancel = cancel
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			p.src.run(runCtx, p)
		}()
		go func() {
			defer p.wg.Done()
			p.watchHealth(runCtx)
		}()
	}
	p.mu.Unlock()

	timer := time.NewTimer(p.o.initTimeout)
	defer timer.Stop()
	var waitErr error
	select {
	case <-p.firstLoad:
	case err := <-p.firstBad:
		// Waiting longer would not help: the source holds a snapshot we reject.
		waitErr = err
	case <-timer.C:
		waitErr = fmt.Errorf("no snapshot after %s", p.o.initTimeout)
	case <-ctx.Done():
		waitErr = ctx.Err()
	case <-p.done:
		waitErr = ErrShutdown
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	p.initReturned = true
	if p.set.Load() != nil { // also covers a load that landed just after the timeout
		return nil
	}
	p.status = openfeature.ErrorState
	if p.lastErr != nil && p.lastErr != waitErr {
		return fmt.Errorf("flagsync provider init (%s): %w (last error: %w)", p.src.describe(), waitErr, p.lastErr)
	}
	return fmt.Errorf("flagsync provider init (%s): %w", p.src.describe(), waitErr)
}

// Shutdown is ShutdownWithContext with a background context.
func (p *Provider) Shutdown() { _ = p.ShutdownWithContext(context.Background()) }

// ShutdownWithContext stops the background goroutines and waits for them (or for ctx),
// then closes the event channel. The provider cannot be started again.
func (p *Provider) ShutdownWithContext(ctx context.Context) error {
	// done is closed before taking mu: a goroutine blocked sending an event holds mu.
	p.closeOnce.Do(func() { close(p.done) })
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	if p.cancel != nil {
		p.cancel()
	}
	p.mu.Unlock()

	stopped := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
		// No goroutine sends any more, so closing cannot panic a sender.
		close(p.events)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flagsync provider shutdown: %w", ctx.Err())
	}
}

// load parses and compiles data and, if it is good, swaps it in and emits events.
// A bad snapshot keeps the last good one serving and is returned as an error.
// Flags whose text the served set was compiled from are shared with it, not
// decoded and compiled again (flagset.Reload).
func (p *Provider) load(data []byte, origin string) error {
	set, problems, err := flagset.Reload(p.set.Load(), data)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if err != nil {
		err = fmt.Errorf("load %s: %w", origin, err)
		p.loadFailedLocked(err)
		return err
	}
	if len(problems) > 0 {
		// The daemon never publishes problems; a hand-written file may have some.
		// Invalid flags are left out by flagset.Compile, the rest is served.
		p.log.Warn("snapshot has problems; invalid flags are not served",
			"origin", origin, "problems", len(problems), "first", problems[0].Error())
	}
	if cur := p.set.Load(); cur != nil && set.Generation() != 0 && set.Generation() < cur.Generation() {
		// Never go backwards: a Redis failover can lose a publish the old master had
		// acknowledged, leaving an older snapshot until the daemon rewrites it. The
		// source answered, so it counts as read; the newer snapshot keeps serving.
		p.log.Warn("source holds an older snapshot than the one served; keeping the newer",
			"origin", origin, "generation", set.Generation(), "serving", cur.Generation())
		p.lastRead = time.Now()
		if p.failing {
			p.failing = false
			p.lastErr = nil
			p.log.Info("source readable again")
		}
		p.checkHealthLocked(p.lastRead)
		return nil
	}
	old := p.set.Swap(set)
	p.lastRead = time.Now()
	p.lastErr = nil
	if p.failing {
		p.failing = false
		p.log.Info("source readable again")
	}
	added, removed, changed := flagset.Diff(old, set)
	p.log.Debug("snapshot loaded", "origin", origin, "flags", set.Len(),
		"revision", set.Revision(), "generation", set.Generation(),
		"added", len(added), "removed", len(removed), "changed", len(changed))

	if old == nil && !p.initReturned {
		// Init is waiting: it returns nil and the SDK emits the READY event.
		p.status = openfeature.ReadyState
		close(p.firstLoad)
		return nil
	}
	if old == nil {
		close(p.firstLoad)
	}
	if p.status != openfeature.ReadyState {
		p.status = openfeature.ReadyState
		p.emitLocked(openfeature.ProviderReady, "snapshot loaded from "+origin, nil)
	}
	if old != nil {
		if keys := joinSorted(added, removed, changed); len(keys) > 0 {
			p.emitLocked(openfeature.ProviderConfigChange, "snapshot changed: "+set.Revision(), keys)
		}
	}
	p.checkHealthLocked(time.Now())
	return nil
}

// loadFailedLocked records a bad snapshot; the last good one keeps serving.
func (p *Provider) loadFailedLocked(err error) {
	p.lastErr = err
	p.log.Error("snapshot rejected; keeping the last good snapshot", "err", err)
	if !p.initReturned {
		select { // Init reports it
		case p.firstBad <- err:
		default:
		}
		return
	}
	if p.status == openfeature.ReadyState || p.status == openfeature.StaleState {
		p.status = openfeature.ErrorState
		p.emitLocked(openfeature.ProviderError, err.Error(), nil)
	}
}

// readOK records that the source was read and holds what is being served.
func (p *Provider) readOK() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastRead = time.Now()
	if p.failing {
		p.failing = false
		p.lastErr = nil
		p.log.Info("source readable again")
	}
	p.checkHealthLocked(p.lastRead)
}

// readFailed records that the source could not be read. The first failure of a
// streak is logged as a warning, the rest at debug level, so an outage does not
// flood the log.
func (p *Provider) readFailed(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr = err
	if !p.failing {
		p.failing = true
		p.log.Warn("source unreadable; serving the last good snapshot", "err", err)
	} else {
		p.log.Debug("source still unreadable", "err", err)
	}
	p.checkHealthLocked(time.Now())
}

// watchHealth turns READY into STALE (and back) as time passes without a read.
func (p *Provider) watchHealth(ctx context.Context) {
	every := p.o.staleAfter
	if p.o.maxAge > 0 && p.o.maxAge < every {
		every = p.o.maxAge
	}
	every = min(max(every/4, 10*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			p.mu.Lock()
			p.checkHealthLocked(now)
			p.mu.Unlock()
		}
	}
}

// checkHealthLocked moves between READY and STALE. ERROR is left only by a good load.
func (p *Provider) checkHealthLocked(now time.Time) {
	if !p.initReturned || p.closed {
		return
	}
	if p.status != openfeature.ReadyState && p.status != openfeature.StaleState {
		return
	}
	reason := p.staleReasonLocked(now)
	switch {
	case reason != "" && p.status == openfeature.ReadyState:
		p.status = openfeature.StaleState
		p.log.Warn("provider stale", "reason", reason)
		p.emitLocked(openfeature.ProviderStale, reason, nil)
	case reason == "" && p.status == openfeature.StaleState:
		p.status = openfeature.ReadyState
		p.log.Info("provider fresh again")
		p.emitLocked(openfeature.ProviderReady, "source readable again", nil)
	}
}

func (p *Provider) staleReasonLocked(now time.Time) string {
	if age := now.Sub(p.lastRead); age > p.o.staleAfter {
		msg := fmt.Sprintf("source %s unreadable for %s", p.src.describe(), age.Round(time.Millisecond))
		if p.lastErr != nil {
			msg += ": " + p.lastErr.Error()
		}
		return msg
	}
	if p.o.maxAge > 0 {
		if s := p.set.Load(); s != nil {
			if at, ok := s.GeneratedAt(); ok && now.Sub(at) > p.o.maxAge {
				return fmt.Sprintf("snapshot generated at %s is older than the max age %s",
					at.UTC().Format(time.RFC3339), p.o.maxAge)
			}
		}
	}
	return ""
}

// emitLocked sends an event; it blocks while the channel is full, until Shutdown.
func (p *Provider) emitLocked(t openfeature.EventType, msg string, changes []string) {
	ev := openfeature.Event{
		ProviderName: Name,
		EventType:    t,
		ProviderEventDetails: openfeature.ProviderEventDetails{
			Message:     msg,
			FlagChanges: changes,
		},
	}
	if t == openfeature.ProviderError {
		ev.ErrorCode = openfeature.GeneralCode
	}
	if s := p.set.Load(); s != nil {
		ev.EventMetadata = map[string]any{
			flagset.MetaFlagSetID:  s.FlagSetID(),
			flagset.MetaVersion:    s.Revision(),
			flagset.MetaGeneration: s.Generation(),
		}
	}
	select {
	case p.events <- ev:
	case <-p.done:
	}
}

// joinSorted merges the sorted, disjoint key lists of flagset.Diff into one sorted list.
func joinSorted(lists ...[]string) []string {
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	if n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return out
}
