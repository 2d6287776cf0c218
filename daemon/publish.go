// Publishing: one sync merges the sources' latest results, checks the guards and
// writes the snapshot to every output; catch-up repairs outputs that lag behind.

package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/notify"
)

// ErrGuard is wrapped by a sync refused by a guard, and by one during which a source
// is held (ErrHeld).
var ErrGuard = errors.New("guard refused the publish")

// ErrHeld is wrapped by a sync that published without a held source's removals.
var ErrHeld = fmt.Errorf("%w: source held", ErrGuard)

// Report is the outcome of one sync.
type Report struct {
	Result     string // published, partial (some output failed), unchanged, held (nothing else changed), refused or failed
	Revision   string
	Generation int64
	Flags      int
	FlagErrors []FlagError
	// Held names the sources held by their guard during this sync.
	Held     []string
	Duration time.Duration
}

// Sync fetches every source (waiting for each, with its timeout) and publishes: merge,
// validate, guard, publish. force releases every held source, skips the whole-set
// guard and publishes even while a source has never fetched successfully. The error
// is non-nil when a source failed, a guard refused or held, or an output failed; the
// Report says what was published anyway.
func (d *Daemon) Sync(ctx context.Context, force bool) (Report, error) {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	d.initOnce.Do(func() { d.loadPrevious(ctx) })
	start := d.now()
	errs := d.fetchAll(ctx)
	var rep Report
	var err error
	if ctx.Err() != nil {
		rep, err = Report{Result: "failed"}, ctx.Err()
	} else {
		rep, err = d.publish(ctx, force)
	}
	return d.finishSync(ctx, start, force, rep, errors.Join(append(errs, err)...))
}

// publishLatest publishes with the latest result of every source, fetching nothing:
// the Run loop calls it when a fetch finished, so one source's change never waits
// for another source.
func (d *Daemon) publishLatest(ctx context.Context) (Report, error) {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	d.initOnce.Do(func() { d.loadPrevious(ctx) })
	start := d.now()
	rep, err := d.publish(ctx, false)
	return d.finishSync(ctx, start, false, rep, err)
}

// ErrUnknownSource is returned by Release for a source name not configured.
var ErrUnknownSource = errors.New("no such source")

// Release is the operator's release of a held source (all sources when name is ""):
// the next publish, run now with the latest results, takes the source's removals,
// and its baseline starts over from what it has now. Releasing a source that is not
// held only resets its baseline.
func (d *Daemon) Release(ctx context.Context, name string) (Report, error) {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	d.initOnce.Do(func() { d.loadPrevious(ctx) })
	found := false
	for _, s := range d.srcs {
		if name == "" || s.cfg.Name == name {
			s.guard.release, found = true, true
		}
	}
	if !found {
		return Report{Result: "failed"}, fmt.Errorf("%w: %q", ErrUnknownSource, name)
	}
	d.releaseWhole = true
	d.log.Info("guard: release requested by an operator", "source", cmpOr(name, "(all)"))
	start := d.now()
	rep, err := d.publish(ctx, false)
	return d.finishSync(ctx, start, false, rep, err)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// finishSync records and logs the outcome of a sync.
func (d *Daemon) finishSync(ctx context.Context, start time.Time, force bool, rep Report, err error) (Report, error) {
	rep.Result = d.publishOutcome(rep.Result)
	rep.Duration = d.now().Sub(start)
	d.metrics.SyncDuration.WithLabelValues(rep.Result).Observe(rep.Duration.Seconds())
	d.mu.Lock()
	d.lastSync = SyncStatus{At: start.UTC(), DurationMS: float64(rep.Duration.Microseconds()) / 1000, Result: rep.Result, Forced: force}
	if err != nil {
		d.lastSync.Error = err.Error()
	}
	d.mu.Unlock()
	lvl := slog.LevelInfo
	switch {
	case rep.Result == "refused":
		lvl = slog.LevelError
	case err != nil:
		// A hold is reported at ERROR once, when it starts (guard.go).
		lvl = slog.LevelWarn
	case rep.Result == "unchanged":
		lvl = slog.LevelDebug
	}
	attrs := []any{"result", rep.Result, "revision", rep.Revision, "generation", rep.Generation,
		"flags", rep.Flags, "flagErrors", len(rep.FlagErrors), "duration", rep.Duration.Round(time.Microsecond)}
	if len(rep.Held) > 0 {
		attrs = append(attrs, "held", strings.Join(rep.Held, ","))
	}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	d.log.Log(ctx, lvl, "sync", attrs...)
	return rep, err
}

// build is one candidate snapshot: the plans merged, validated and expiry-handled.
type build struct {
	set      *flagset.Set
	keys     []string
	flagErrs []FlagError
	secret   secretFlags // the flags whose values came from a secret
}

// publish builds the snapshot from the latest result of every source and publishes
// it. Per flag, a value a source cannot give (does not parse, does not fit, makes the
// flag invalid) keeps the source's accepted contribution; per source, removals beyond
// the guard are withheld while the source is held. Callers hold syncMu.
func (d *Daemon) publish(ctx context.Context, force bool) (Report, error) {
	d.loadState()
	defer d.saveState()
	var missing []string
	var plans []*sourcePlan
	var flagErrs []FlagError
	d.mu.Lock()
	for _, s := range d.srcs {
		if s.last == nil {
			missing = append(missing, s.cfg.Name)
			continue
		}
		plans = append(plans, newPlan(s, s.last))
		for _, p := range s.last.Problems {
			flagErrs = append(flagErrs, FlagError{Flag: p.Flag, Path: p.Path, Message: p.Message, Source: s.cfg.Name})
		}
	}
	d.mu.Unlock()
	if len(missing) > 0 && !force {
		// Publishing without a source that never answered would delete its flags.
		err := fmt.Errorf("not publishing: source(s) %s never fetched successfully yet (use --force to publish without them)", strings.Join(missing, ", "))
		_ = d.catchUp(ctx) // output errors are in the status; this error says more
		return Report{Result: "failed"}, err
	}
	now := d.now()
	if force {
		for _, p := range plans {
			p.s.guard.release = true
		}
	}
	var guardErrs []error
	for _, p := range plans {
		if err := d.guardSource(p, now); err != nil {
			guardErrs = append(guardErrs, err)
		}
	}
	b, err := d.buildPlans(plans, flagErrs)
	if err != nil {
		d.reportRejections(plans, now)
		return Report{Result: "failed", FlagErrors: b.flagErrs}, err
	}

	d.mu.Lock()
	cur := d.current
	d.mu.Unlock()
	releaseWhole := force || d.releaseWhole
	d.releaseWhole = false
	if !releaseWhole && cur != nil && cur.revision != b.set.Revision() {
		if msg, removed := d.checkWhole(cur, b.keys, now); msg != "" {
			// Hold the sources whose removals make the set shrink too much; refuse
			// the whole publish only when that is not enough (e.g. expiry removals).
			heldMore := false
			for _, p := range plans {
				if p.s.guard.held == nil && !p.s.guard.release && len(p.removed) > 0 {
					d.startHold(p, "whole set: "+msg, now)
					guardErrs = append(guardErrs, fmt.Errorf("%w: source %s held: whole set: %s", ErrHeld, p.s.cfg.Name, msg))
					heldMore = true
				}
			}
			if heldMore {
				if b, err = d.buildPlans(plans, flagErrs); err != nil {
					d.reportRejections(plans, now)
					return Report{Result: "failed", FlagErrors: b.flagErrs}, err
				}
				msg, removed = "", nil
				if cur.revision != b.set.Revision() {
					msg, removed = d.checkWhole(cur, b.keys, now)
				}
			}
			if msg != "" {
				d.reportRejections(plans, now)
				return d.refuse(ctx, cur, b, msg, removed, guardErrs)
			}
		}
	}
	d.reportRejections(plans, now)

	rev := b.set.Revision()
	rep := Report{Result: "unchanged", Revision: rev, Flags: len(b.keys), FlagErrors: b.flagErrs}
	d.mu.Lock()
	d.flagErrors = b.flagErrs
	d.guard = joinErrs(guardErrs)
	d.mu.Unlock()
	if cur == nil || cur.revision != rev {
		d.mu.Lock()
		gen := max(d.lastGen+1, d.now().UnixMilli())
		d.mu.Unlock()
		snap := stamp(b.set, gen, b.keys, d.now())
		snap.secret = b.secret
		d.mu.Lock()
		d.current, d.lastGen = snap, gen
		d.mu.Unlock()
		d.metrics.FlagsPublished.Set(float64(len(b.keys)))
		rep.Result = "published"
		d.notifyPublish(cur, snap)
	} else if cur.secret == nil {
		// The snapshot read back at start did not say which flags are secret; this
		// sync compiled the same flags and knows.
		known := *cur
		known.secret = b.secret
		d.mu.Lock()
		d.current = &known
		d.mu.Unlock()
	}
	d.accept(plans, cur, b.keys, now, releaseWhole)
	// Saved before the outputs are written: a daemon that sees them change (another
	// process's sync --once --force) then finds this state, with its release.
	d.saveState()
	for _, p := range plans {
		if p.s.guard.held != nil {
			rep.Held = append(rep.Held, p.s.cfg.Name)
		}
	}
	if rep.Result == "unchanged" && len(rep.Held) > 0 {
		rep.Result = "held"
	}
	errs := guardErrs
	if err := d.catchUp(ctx); err != nil {
		errs = append(errs, err)
	}
	d.mu.Lock()
	rep.Generation = d.current.generation
	d.mu.Unlock()
	return rep, errors.Join(errs...)
}

func joinErrs(errs []error) string {
	if err := errors.Join(errs...); err != nil {
		return err.Error()
	}
	return ""
}

// buildPlans merges the plans, validates the result and applies expiry. A flag made
// invalid by a source's new contribution is built again with that source's accepted
// contribution (or without it when there is none), and the source's value counts as
// rejected.
func (d *Daemon) buildPlans(plans []*sourcePlan, sourceErrs []FlagError) (build, error) {
	set, flagErrs, invalid, secret := d.mergePlans(plans, sourceErrs)
	reverted := map[string]bool{}
	for _, key := range slices.Sorted(maps.Keys(invalid)) {
		for _, p := range plans {
			if !p.changed(key) {
				continue
			}
			origin := p.origin(key)
			p.reject(key, fmt.Sprintf("%s (%s)", invalid[key], origin))
			reverted[key] = true
		}
	}
	if len(reverted) > 0 {
		first := flagErrs
		set, flagErrs, _, secret = d.mergePlans(plans, sourceErrs)
		// The problems of the values not taken stay in the status.
		for _, fe := range first {
			if fe.Source == "validate" && reverted[fe.Flag] {
				flagErrs = append(flagErrs, fe)
			}
		}
	}
	b := build{flagErrs: flagErrs, secret: secret}
	if set.Revision() == "" {
		return b, errors.New("revision: the merged snapshot cannot be encoded")
	}
	set, err := d.applyExpiry(set, secret)
	if err != nil {
		return b, err
	}
	b.set, b.keys = set, set.Keys()
	return b, nil
}

// mergePlans merges and validates once. Overlays that do not fit count as rejected
// for their source (merge applied the source's accepted overlay when it still fits);
// invalid maps each flag with a validation problem to its first message. Problems
// about secret-derived flags come out redacted (they may quote the secret).
func (d *Daemon) mergePlans(plans []*sourcePlan, sourceErrs []FlagError) (*flagset.Set, []FlagError, map[string]string, secretFlags) {
	flagErrs := slices.Clone(sourceErrs)
	results := make([]sourceResult, len(plans))
	byName := make(map[string]*sourcePlan, len(plans))
	for i, p := range plans {
		results[i] = p.result()
		byName[p.s.cfg.Name] = p
	}
	secret := secretKeys(results)
	secret.redactFlagErrors(flagErrs)
	merged, mergeProblems := merge(results)
	for _, mp := range mergeProblems {
		secret.redact(&mp.Flag, &mp.Path, &mp.Message)
		flagErrs = append(flagErrs, FlagError{Flag: mp.Flag, Path: mp.Path, Message: mp.Message, Source: "merge"})
		if p := byName[mp.Source]; p != nil {
			p.rejectOverlay(mp.Flag, mp.Message, mp.Kept)
		}
	}
	merged.Metadata = map[string]any{flagset.MetaFlagSetID: d.cfg.FlagSetID}
	// One compile validates the merged document, computes its revision and is the
	// set served once published (stamped, not compiled again).
	set, validateProblems := flagset.CompileStrict(merged)
	invalid := map[string]string{}
	for _, p := range validateProblems {
		secret.redactProblem(&p)
		flagErrs = append(flagErrs, FlagError{Flag: p.Flag, Path: p.Path, Message: p.Message, Source: "validate"})
		if _, seen := invalid[p.Flag]; p.Flag != "" && !seen {
			invalid[p.Flag] = p.Path + ": " + p.Message
		}
	}
	for _, fe := range flagErrs[len(sourceErrs):] {
		d.metrics.FlagErrors.WithLabelValues(fe.Source).Inc()
	}
	return set, flagErrs, invalid, secret
}

// checkWhole applies the whole-set guard to publishing keys over cur: the message
// ("" when within bounds) and the flags the publish would remove.
func (d *Daemon) checkWhole(cur *snapshot, keys []string, now time.Time) (string, []string) {
	next := make(map[string]bool, len(keys))
	for _, k := range keys {
		next[k] = true
	}
	prev := make(map[string]bool, len(cur.keys))
	for _, k := range cur.keys {
		prev[k] = true
	}
	each := func(fn func(string)) {
		for _, k := range cur.keys {
			fn(k)
		}
	}
	removedN, base := d.whole.baselineCheck(each, func(k string) bool { return prev[k] }, func(k string) bool { return next[k] }, now, d.cfg.Guards.Window())
	msg, trip := d.trips("the new snapshot", removedN, base, len(keys))
	if !trip {
		return "", nil
	}
	var removed []string
	for _, k := range cur.keys {
		if !next[k] {
			removed = append(removed, k)
		}
	}
	return fmt.Sprintf("%s: %s", msg, shortList(removed, 10)), removed
}

// refuse keeps the current snapshot: the whole-set guard stopped the publish.
func (d *Daemon) refuse(ctx context.Context, cur *snapshot, b build, msg string, removed []string, guardErrs []error) (Report, error) {
	d.metrics.GuardTrips.Inc()
	d.mu.Lock()
	repeated := d.guard == msg
	d.guard = msg
	d.flagErrors = b.flagErrs
	d.mu.Unlock()
	if !repeated && d.notifying() { // one alert per finding, not one per sync while it lasts
		d.notifier.Notify(notify.GuardEvent(d.cfg.FlagSetID, msg, removed, d.now()))
	}
	rep := Report{Result: "refused", Revision: cur.revision, Flags: len(cur.keys), Generation: cur.generation, FlagErrors: b.flagErrs}
	_ = d.catchUp(ctx) // output errors are in the status; the guard is the news
	return rep, errors.Join(append(guardErrs, fmt.Errorf("%w: %s", ErrGuard, msg))...)
}

// accept makes the plans the sources' accepted contributions and moves the
// baselines: removals published now count against their source (and the whole set)
// for guards.baselineWindow; a released source, or every one when forced, starts
// over.
func (d *Daemon) accept(plans []*sourcePlan, prev *snapshot, keys []string, now time.Time, force bool) {
	window := d.cfg.Guards.Window()
	for _, p := range plans {
		var gone []string
		for _, k := range p.removed {
			if !p.has(k) {
				gone = append(gone, k)
			}
		}
		p.s.guard.recordRemovals(gone, p.has, now, window, p.s.guard.release)
		p.s.guard.release = false
		p.accept()
	}
	next := make(map[string]bool, len(keys))
	for _, k := range keys {
		next[k] = true
	}
	var gone []string
	if prev != nil {
		for _, k := range prev.keys {
			if !next[k] {
				gone = append(gone, k)
			}
		}
	}
	d.whole.recordRemovals(gone, func(k string) bool { return next[k] }, now, window, force)
}

// stamp adds the snapshot metadata to the validated set, sharing its compiled flags
// and their encodings (the bytes are assembled when an output writes them).
func stamp(set *flagset.Set, gen int64, keys []string, now time.Time) *snapshot {
	base := set.Metadata()
	meta := make(map[string]any, len(base)+3)
	for k, v := range base {
		meta[k] = v
	}
	at := now.UTC()
	rev := set.Revision()
	meta[flagset.MetaVersion] = rev
	meta[flagset.MetaGeneratedAt] = at.Format(time.RFC3339)
	meta[flagset.MetaGeneration] = float64(gen)
	return &snapshot{set: set.WithMetadata(meta), revision: rev, generation: gen, generatedAt: at, keys: keys}
}

// catchUp publishes the current snapshot to every output that does not hold it. The
// writes run even if ctx is cancelled (shutdown finishes an in-flight publish).
func (d *Daemon) catchUp(ctx context.Context) error {
	d.mu.Lock()
	cur := d.current
	d.mu.Unlock()
	if cur == nil {
		return nil
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	defer d.refreshFlagSet() // serve what was published (also after a re-stamp)
	var errs []error
	var pub *snapshot // cur with its bytes, assembled for the first output that needs them
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		restamp := false
		for _, o := range d.outs {
			if err := d.checkOutput(pctx, o, cur); err != nil {
				errs = append(errs, fmt.Errorf("output %s: %w", o.out.name(), err))
				continue
			}
			d.mu.Lock()
			held := o.revision == cur.revision
			d.mu.Unlock()
			if held {
				continue
			}
			if pub == nil {
				if pub, err = cur.encoded(); err != nil {
					return err
				}
			}
			err := o.out.publish(pctx, pub)
			if d.standby(o, cur, err) {
				continue
			}
			now := d.now().UTC()
			var stale *staleError
			if errors.As(err, &stale) && attempt == 0 {
				// Another writer got a newer generation in: re-stamp above it, then
				// rewrite every output so they agree.
				d.mu.Lock()
				d.lastGen = max(d.lastGen, stale.current)
				d.mu.Unlock()
				restamp = true
				break
			}
			d.mu.Lock()
			if err != nil {
				o.lastError, o.lastErrorAt = err.Error(), now
				d.mu.Unlock()
				d.metrics.OutputErrors.WithLabelValues(o.out.name()).Inc()
				errs = append(errs, fmt.Errorf("output %s: %w", o.out.name(), err))
				continue
			}
			o.revision, o.generation, o.lastSuccess, o.lastError = cur.revision, cur.generation, now, ""
			d.ready = true
			d.mu.Unlock()
			d.metrics.Publishes.WithLabelValues(o.out.name()).Inc()
			d.log.Info("published", "output", o.out.name(), "target", o.out.target(), "revision", cur.revision, "generation", cur.generation, "flags", len(cur.keys))
		}
		if !restamp {
			break
		}
		d.mu.Lock()
		gen := max(d.lastGen+1, d.now().UnixMilli())
		d.mu.Unlock()
		snap := stamp(cur.set, gen, cur.keys, d.now())
		snap.secret = cur.secret
		pub = nil
		d.mu.Lock()
		d.current, d.lastGen = snap, gen
		for _, o := range d.outs {
			o.revision = ""
		}
		d.mu.Unlock()
		cur = snap
	}
	if !d.Ready() {
		d.mu.Lock()
		// Outputs that already held the current snapshot at start count too.
		for _, o := range d.outs {
			if o.revision == cur.revision {
				d.ready = true
			}
		}
		d.mu.Unlock()
	}
	return errors.Join(errs...)
}

// lagging tells whether some output does not hold the current snapshot.
func (d *Daemon) lagging() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.current == nil {
		return false
	}
	for _, o := range d.outs {
		if o.revision != d.current.revision {
			return true
		}
	}
	return false
}

// encoded returns a copy of s with its canonical bytes. Snapshots are kept without
// them: the set holds the flags' encodings, and the bytes are assembled (one
// allocation, no encoding) only while an output writes them.
func (s *snapshot) encoded() (*snapshot, error) {
	b, err := s.set.Canonical()
	if err != nil {
		return nil, fmt.Errorf("encode snapshot %s: %w", s.revision, err)
	}
	pub := *s
	pub.bytes = b
	return &pub, nil
}
