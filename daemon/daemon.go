// Package daemon is the flagsync sync pipeline: fetch each configured source on its
// own (a hung store delays nobody), merge the latest results by precedence, validate
// with flagset, keep each flag's last accepted value when a source gives a bad one,
// apply the per-source and whole-set guards (holding a source that lost too many
// flags), and publish one snapshot atomically to a JSON file and to Redis — on a
// cron schedule and shortly after a source reports a change. It also serves health,
// metrics and status over HTTP.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/lifecycle"
	"github.com/flagsync/flagsync/notify"
	"github.com/flagsync/flagsync/sources"
)

// publishTimeout bounds one output write; it also bounds how long shutdown waits for
// an in-flight publish.
const publishTimeout = 10 * time.Second

// Options are the daemon's collaborators; zero values pick the defaults.
type Options struct {
	Logger  *slog.Logger    // slog.Default() when nil
	Metrics *Metrics        // NewMetrics() when nil; pass one to keep counters across reloads
	Environ func() []string // os.Environ when nil (env sources read it)
	Now     func() time.Time
	Elector elector // leader election (NewElector); nil: this replica always leads
}

// Daemon runs the sync pipeline for one configuration.
type Daemon struct {
	cfg     *Config
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
	srcs    []*sourceState
	outs    []*outputState
	el      elector   // nil without HA
	flagSet servedSet // the current snapshot compiled, for OFREP and the status page

	lc       lifecycle.Config     // cleanup: with defaults
	action   lifecycle.ActionKind // the action for cfg.Environment
	audit    *slog.Logger         // deleteFromSource audit lines
	notifier *notify.Notifier

	syncMu   sync.Mutex // one sync (or catch-up) at a time
	initOnce sync.Once

	mu         sync.Mutex // guards everything below and the status fields of srcs/outs
	current    *snapshot
	lastGen    int64
	ready      bool
	lastSync   SyncStatus
	flagErrors []FlagError
	guard      string     // why the last publish was refused or a source is held
	whole      guardState // the whole-set removal baseline (under syncMu)
	// releaseWhole: an operator release waits for the next publish, which then
	// skips the whole-set guard and starts its baseline over (under syncMu).
	releaseWhole bool
	holds        []HoldStatus
	rejections   []rejection

	// The guard state file (state.go), under syncMu.
	stateLoaded bool
	stateInfo   stateFileInfo
	stateSaved  []byte
	findings    []lifecycle.Finding // flags expiring, in grace, expired or invalid at the last sync
	// expirySeen is each such flag's status at the last sync: a status not seen
	// before is logged and notified (announceExpiry).
	expirySeen map[string]lifecycle.Status
}

type sourceState struct {
	cfg SourceConfig
	src sources.Source

	last        *sources.Result // last good result, kept while the source fails
	lastSuccess time.Time
	lastError   string
	lastErrorAt time.Time
	flight      *fetchFlight // the fetch in progress, nil when none (under Daemon.mu)
	apiCalls    atomic.Int64 // remote API calls the source made (also counted in Prometheus)

	// Below: the publish state, touched only under Daemon.syncMu.
	accepted accepted             // what the source contributed to the accepted snapshot
	guard    guardState           // its removal guard and hold
	rejected map[string]rejection // its values rejected at the last publish, by flag
	// reconfigured: a reload changed this source's entry, so the guard state saved
	// for its old entry does not describe it (state.go skips it).
	reconfigured bool
}

type outputState struct {
	out output

	revision    string // the revision the output held when last checked or written ("" none or unknown)
	generation  int64  // its generation
	lastSuccess time.Time
	lastError   string
	lastErrorAt time.Time
}

// snapshot is one published (or to-be-published) flag set: its compiled set for
// OFREP, the status page and change notifications, which also holds the flags'
// canonical encodings. The set shares its flag definitions with the sources' last
// good results, so it adds only the compiled form, never a second copy of the
// document; the snapshot bytes are assembled from it only while being written.
type snapshot struct {
	bytes       []byte       // only in the copy handed to outputs (see encoded)
	set         *flagset.Set // stamped: its revision and generation are the snapshot's
	revision    string
	generation  int64
	generatedAt time.Time
	keys        []string // sorted
	// secret are the flags whose values came from a secret (see secretFlags); nil
	// when unknown (read back from an output).
	secret secretFlags
}

// New builds the sources and outputs of cfg. It does no I/O beyond constructing
// clients; Run or Sync reads the previous snapshot first.
func New(cfg *Config, opts Options) (*Daemon, error) {
	d := &Daemon{cfg: cfg, log: opts.Logger, metrics: opts.Metrics, now: opts.Now, el: opts.Elector}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.metrics == nil {
		d.metrics = NewMetrics()
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.lc = cfg.CleanupConfig()
	d.action = d.lc.ActionFor(cfg.Environment)
	d.audit = d.log.With("log", "audit")
	environ := opts.Environ
	if environ == nil {
		environ = os.Environ
	}
	deps := SourceDeps{Logger: d.log, Environ: environ}
	for _, sc := range cfg.Sources {
		factory, ok := sourceTypes[sc.Type]
		if !ok {
			return nil, fmt.Errorf("sources[%d].type: unknown source type %q", sc.index, sc.Type)
		}
		st := &sourceState{cfg: sc}
		sd := deps.forSource(sc, d.log.With("source", sc.Name))
		sd.APICall = func(source, op string) {
			d.metrics.SourceAPICalls.WithLabelValues(source, op).Inc()
			st.apiCalls.Add(1)
		}
		src, err := factory(sc.Name, sc.Node, sd)
		if err != nil {
			return nil, fmt.Errorf("sources[%d].%w", sc.index, err)
		}
		st.src = src
		d.srcs = append(d.srcs, st)
	}
	if f := cfg.Outputs.File; f != nil {
		d.outs = append(d.outs, &outputState{out: &fileOutput{path: f.Path, mode: f.FileMode()}})
	}
	if r := cfg.Outputs.Redis; r != nil {
		o, err := newRedisOutput(r, opts.Elector)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.outs = append(d.outs, &outputState{out: o})
	}
	n, err := notify.New(cfg.Notify, notify.Options{Logger: d.log.With("component", "notify"),
		Environment: cfg.Environment, Metrics: d.metrics.Notify})
	if err != nil {
		d.Close()
		return nil, err
	}
	d.notifier = n
	return d, nil
}

func (deps SourceDeps) with(l *slog.Logger) SourceDeps {
	deps.Logger = l
	return deps
}

// Config is the configuration the daemon runs.
func (d *Daemon) Config() *Config { return d.cfg }

// InheritSources copies old's last good result (and its time) into every source of d
// whose configuration is identical in old: same name, type, timeout and entry content
// after ${ENV} expansion. Call it on a SIGHUP reload, before d runs: without it the new
// daemon treats every source as never fetched, so one that fails right after the
// reload (a store briefly down) would hold back all publishing, although old had a
// good result for that very configuration. A source whose entry changed starts fresh:
// its old result answers a different question. Only the daemon's result is carried;
// the new source objects keep no cache from old and fetch normally. Sources of d that
// already have a result keep it.
func (d *Daemon) InheritSources(old *Daemon) {
	if old == nil || old == d {
		return
	}
	type carried struct {
		cfg         SourceConfig
		last        *sources.Result
		lastSuccess time.Time
		accepted    accepted
		guard       guardState
		rejected    map[string]rejection
	}
	// The publish state is read under old.syncMu (old has stopped syncing by now, the
	// lock only orders memory); the results under old.mu; d's under d.mu. Never two
	// of them at once.
	old.syncMu.Lock()
	prev := make(map[string]carried, len(old.srcs))
	for _, s := range old.srcs {
		prev[s.cfg.Name] = carried{cfg: s.cfg, accepted: s.accepted, guard: s.guard, rejected: s.rejected}
	}
	whole := old.whole
	old.syncMu.Unlock()
	old.mu.Lock()
	expirySeen := old.expirySeen // announced already: a reload does not repeat it
	for _, s := range old.srcs {
		c := prev[s.cfg.Name]
		c.last, c.lastSuccess = s.last, s.lastSuccess
		prev[s.cfg.Name] = c
	}
	old.mu.Unlock()
	n := 0
	d.syncMu.Lock()
	d.whole = whole
	d.mu.Lock()
	d.expirySeen = expirySeen
	d.mu.Unlock()
	for _, s := range d.srcs {
		c, ok := prev[s.cfg.Name]
		if ok && !sameSourceConfig(s.cfg, c.cfg) {
			s.reconfigured = true
		}
		if !ok || s.last != nil || !sameSourceConfig(s.cfg, c.cfg) {
			continue
		}
		// A hold, its baseline and the accepted contributions answer the same
		// question as before: a reload must not publish a removal the guard holds,
		// nor a value the daemon rejected.
		s.accepted, s.guard, s.rejected = c.accepted, c.guard, c.rejected
		if c.last == nil {
			continue
		}
		d.mu.Lock()
		// Results are never mutated once returned, so both daemons may share it.
		s.last, s.lastSuccess = c.last, c.lastSuccess
		d.mu.Unlock()
		n++
		// The gauge follows lastSuccess (Options.Metrics may be a new set).
		d.metrics.SourceLastSuccess.WithLabelValues(s.cfg.Name).Set(float64(c.lastSuccess.UnixMilli()) / 1000)
	}
	d.syncMu.Unlock()
	d.log.Info("sources carried their last good result over the reload", "carried", n, "sources", len(d.srcs))
}

// sameSourceConfig tells whether two source entries configure the same fetch. The
// entries are compared by their decoded content, so comments, key order and layout
// do not count, but any value does (a changed watchDebounce too: being conservative
// costs at worst one sync held back while the source is down).
func sameSourceConfig(a, b SourceConfig) bool {
	if a.Name != b.Name || a.Type != b.Type || a.Timeout != b.Timeout || a.Node == nil || b.Node == nil {
		return false
	}
	var av, bv any
	if a.Node.Decode(&av) != nil || b.Node.Decode(&bv) != nil {
		return false
	}
	return reflect.DeepEqual(av, bv)
}

// notifyCloseTimeout bounds how long Close waits for queued notifications.
const notifyCloseTimeout = 10 * time.Second

// Close releases the outputs' connections and delivers the queued notifications
// (waiting at most notifyCloseTimeout).
func (d *Daemon) Close() {
	for _, o := range d.outs {
		o.out.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), notifyCloseTimeout)
	defer cancel()
	if err := d.notifier.Close(ctx); err != nil {
		d.log.Warn("notifications not delivered before shutdown", "err", err)
	}
}

// loadPrevious reads what the outputs hold so generations stay monotonic across
// restarts and the guards compare against the last published snapshot.
func (d *Daemon) loadPrevious(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range d.outs {
		prev, err := o.out.load(ctx)
		if err != nil {
			d.log.Warn("cannot read the previous snapshot", "output", o.out.name(), "target", o.out.target(), "err", err)
			continue
		}
		if prev == nil {
			continue
		}
		o.revision, o.generation = prev.revision, prev.generation
		d.lastGen = max(d.lastGen, prev.generation)
		if prev.set != nil && (d.current == nil || prev.generation > d.current.generation) {
			d.current = prev
		}
	}
	if d.current != nil {
		d.metrics.FlagsPublished.Set(float64(len(d.current.keys)))
		d.log.Info("previous snapshot", "revision", d.current.revision, "generation", d.current.generation, "flags", len(d.current.keys))
	}
}

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

// Ready tells whether a snapshot has been published (or was already held by an output
// and confirmed by a sync).
func (d *Daemon) Ready() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ready
}

// Snapshot returns the current snapshot bytes (nil before there is one).
func (d *Daemon) Snapshot() []byte {
	d.mu.Lock()
	cur := d.current
	d.mu.Unlock()
	if cur == nil || cur.set == nil {
		return nil
	}
	pub, err := cur.encoded()
	if err != nil {
		d.log.Error("cannot encode the current snapshot", "err", err)
		return nil
	}
	return pub.bytes
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

// FlagError is one per-flag problem in the status.
type FlagError struct {
	Flag    string `json:"flag,omitempty"`
	Path    string `json:"path"`
	Message string `json:"message"`
	Source  string `json:"source"` // the source name, "merge" (overlays) or "validate"
}

// SyncStatus describes the last sync.
type SyncStatus struct {
	At         time.Time `json:"at"`
	DurationMS float64   `json:"durationMs"`
	Result     string    `json:"result"`
	Forced     bool      `json:"forced,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// SourceStatus describes one source.
type SourceStatus struct {
	Name        string     `json:"name"`
	Type        string     `json:"type"`
	LastSuccess *time.Time `json:"lastSuccess,omitempty"`
	LastError   string     `json:"lastError,omitempty"`
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
	Definitions int        `json:"definitions"`
	Overlays    int        `json:"overlays"`
	Held        bool       `json:"held,omitempty"`
	APICalls    int64      `json:"apiCalls"` // remote API calls since the daemon started
}

// OutputStatus describes one output.
type OutputStatus struct {
	Name        string     `json:"name"`
	Target      string     `json:"target"`
	Revision    string     `json:"revision,omitempty"`   // what the output held when last checked or written
	Generation  int64      `json:"generation,omitempty"` // its generation
	UpToDate    bool       `json:"upToDate"`
	LastSuccess *time.Time `json:"lastSuccess,omitempty"`
	LastError   string     `json:"lastError,omitempty"`
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
}

// Status is the JSON document of /api/v1/status.
type Status struct {
	FlagSetID   string         `json:"flagSetId"`
	Ready       bool           `json:"ready"`
	Revision    string         `json:"revision,omitempty"`
	Generation  int64          `json:"generation,omitempty"`
	GeneratedAt *time.Time     `json:"generatedAt,omitempty"`
	Flags       int            `json:"flags"`
	LastSync    *SyncStatus    `json:"lastSync,omitempty"`
	Guard       string         `json:"guard,omitempty"`
	Sources     []SourceStatus `json:"sources"`
	Outputs     []OutputStatus `json:"outputs"`
	FlagErrors  []FlagError    `json:"flagErrors"`
	// Holds are the sources held by their removal guard; Rejected the values not
	// taken at the last publish (the flag kept the source's accepted value, or fell
	// back to lower precedence when there was none).
	Holds    []HoldStatus `json:"holds"`
	Rejected []rejection  `json:"rejected"`
	// Expiry lists the flags expiring soon, in their grace period, expired or with an
	// invalid expiresAt, with owner and source (docs/LIFECYCLE.md).
	Expiry []lifecycle.Finding `json:"expiry"`
}

// Status reports the daemon's state. It never contains source values or secrets.
func (d *Daemon) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	holds := append([]HoldStatus{}, d.holds...)
	st := Status{Holds: holds, Rejected: append([]rejection{}, d.rejections...), FlagSetID: d.cfg.FlagSetID, Ready: d.ready, FlagErrors: append([]FlagError{}, d.flagErrors...), Guard: d.guard,
		Expiry: append([]lifecycle.Finding{}, d.findings...)}
	if d.current != nil {
		st.Revision, st.Generation, st.Flags = d.current.revision, d.current.generation, len(d.current.keys)
		if !d.current.generatedAt.IsZero() {
			t := d.current.generatedAt
			st.GeneratedAt = &t
		}
	}
	if !d.lastSync.At.IsZero() {
		ls := d.lastSync
		st.LastSync = &ls
	}
	for _, s := range d.srcs {
		ss := SourceStatus{Name: s.cfg.Name, Type: s.cfg.Type, LastError: s.lastError, APICalls: s.apiCalls.Load()}
		if !s.lastSuccess.IsZero() {
			t := s.lastSuccess
			ss.LastSuccess = &t
		}
		if !s.lastErrorAt.IsZero() && s.lastError != "" {
			t := s.lastErrorAt
			ss.LastErrorAt = &t
		}
		if s.last != nil {
			ss.Definitions, ss.Overlays = len(s.last.Definitions), len(s.last.Overlays)
		}
		for _, h := range holds {
			ss.Held = ss.Held || h.Source == s.cfg.Name
		}
		st.Sources = append(st.Sources, ss)
	}
	for _, o := range d.outs {
		os := OutputStatus{Name: o.out.name(), Target: o.out.target(), Revision: o.revision, Generation: o.generation, LastError: o.lastError}
		os.UpToDate = d.current != nil && o.revision == d.current.revision
		if !o.lastSuccess.IsZero() {
			t := o.lastSuccess
			os.LastSuccess = &t
		}
		if !o.lastErrorAt.IsZero() && o.lastError != "" {
			t := o.lastErrorAt
			os.LastErrorAt = &t
		}
		st.Outputs = append(st.Outputs, os)
	}
	sort.SliceStable(st.FlagErrors, func(i, j int) bool { return st.FlagErrors[i].Path < st.FlagErrors[j].Path })
	return st
}
