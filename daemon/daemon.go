// Package daemon is the flagsync sync pipeline: fetch every configured source
// concurrently, merge by precedence, validate with flagset, apply the guards, and
// publish one snapshot atomically to a JSON file and to Redis — on a cron schedule
// and shortly after a source reports a change. It also serves health, metrics and
// status over HTTP.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
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
	guard      string
	findings   []lifecycle.Finding // flags expiring, in grace, expired or invalid at the last sync
}

type sourceState struct {
	cfg SourceConfig
	src sources.Source

	last        *sources.Result // last good result, kept while the source fails
	lastSuccess time.Time
	lastError   string
	lastErrorAt time.Time
}

type outputState struct {
	out output

	revision    string // the revision the output is known to hold ("" unknown)
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
	deps := SourceDeps{Logger: d.log, Environ: environ, APICall: func(source, op string) {
		d.metrics.SourceAPICalls.WithLabelValues(source, op).Inc()
	}}
	for _, sc := range cfg.Sources {
		factory, ok := sourceTypes[sc.Type]
		if !ok {
			return nil, fmt.Errorf("sources[%d].type: unknown source type %q", sc.index, sc.Type)
		}
		src, err := factory(sc.Name, sc.Node, deps.with(d.log.With("source", sc.Name)))
		if err != nil {
			return nil, fmt.Errorf("sources[%d].%w", sc.index, err)
		}
		d.srcs = append(d.srcs, &sourceState{cfg: sc, src: src})
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
	}
	// Copy under old.mu, then write under d.mu: never both locks at once.
	old.mu.Lock()
	prev := make(map[string]carried, len(old.srcs))
	for _, s := range old.srcs {
		if s.last != nil {
			prev[s.cfg.Name] = carried{cfg: s.cfg, last: s.last, lastSuccess: s.lastSuccess}
		}
	}
	old.mu.Unlock()
	n := 0
	d.mu.Lock()
	for _, s := range d.srcs {
		c, ok := prev[s.cfg.Name]
		if !ok || s.last != nil || !sameSourceConfig(s.cfg, c.cfg) {
			continue
		}
		// Results are never mutated once returned, so both daemons may share it.
		s.last, s.lastSuccess = c.last, c.lastSuccess
		n++
		// The gauge follows lastSuccess (Options.Metrics may be a new set).
		d.metrics.SourceLastSuccess.WithLabelValues(s.cfg.Name).Set(float64(c.lastSuccess.UnixMilli()) / 1000)
	}
	d.mu.Unlock()
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
		o.revision = prev.revision
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

// ErrGuard is wrapped by a sync refused by a guard.
var ErrGuard = errors.New("guard refused the publish")

// Report is the outcome of one sync.
type Report struct {
	Result     string // published, unchanged, refused or failed
	Revision   string
	Generation int64
	Flags      int
	FlagErrors []FlagError
	Duration   time.Duration
}

// Sync runs one full sync: fetch, merge, validate, guard, publish. force skips the
// guards and publishes even while a source has never fetched successfully. The error
// is non-nil when a source failed, a guard refused, or an output failed; the Report
// says what was published anyway.
func (d *Daemon) Sync(ctx context.Context, force bool) (Report, error) {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	d.initOnce.Do(func() { d.loadPrevious(ctx) })
	start := d.now()
	rep, err := d.sync(ctx, force)
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
	case errors.Is(err, ErrGuard):
		lvl = slog.LevelError
	case err != nil:
		lvl = slog.LevelWarn
	case rep.Result == "unchanged":
		lvl = slog.LevelDebug
	}
	attrs := []any{"result", rep.Result, "revision", rep.Revision, "generation", rep.Generation,
		"flags", rep.Flags, "flagErrors", len(rep.FlagErrors), "duration", rep.Duration.Round(time.Microsecond)}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	d.log.Log(ctx, lvl, "sync", attrs...)
	return rep, err
}

func (d *Daemon) sync(ctx context.Context, force bool) (Report, error) {
	var errs []error
	errs = append(errs, d.fetchAll(ctx)...)
	if ctx.Err() != nil {
		return Report{Result: "failed"}, ctx.Err()
	}
	results := make([]sourceResult, 0, len(d.srcs))
	var missing []string
	var flagErrs []FlagError
	d.mu.Lock()
	for _, s := range d.srcs {
		if s.last == nil {
			missing = append(missing, s.cfg.Name)
			continue
		}
		results = append(results, sourceResult{name: s.cfg.Name, res: s.last})
		for _, p := range s.last.Problems {
			flagErrs = append(flagErrs, FlagError{Flag: p.Flag, Path: p.Path, Message: p.Message, Source: s.cfg.Name})
		}
	}
	d.mu.Unlock()
	if len(missing) > 0 && !force {
		// Publishing without a source that never answered would delete its flags.
		err := fmt.Errorf("not publishing: source(s) %s never fetched successfully yet (use --force to publish without them)", strings.Join(missing, ", "))
		_ = d.catchUp(ctx) // output errors are in the status; this error says more
		return Report{Result: "failed"}, errors.Join(append(errs, err)...)
	}

	secret := secretKeys(results)
	merged, mergeProblems := merge(results)
	for _, p := range mergeProblems {
		flagErrs = append(flagErrs, FlagError{Flag: p.Flag, Path: p.Path, Message: p.Message, Source: "merge"})
	}
	merged.Metadata = map[string]any{flagset.MetaFlagSetID: d.cfg.FlagSetID}
	// One compile validates the merged document, computes its revision and is the
	// set served once published (stamped, not compiled again).
	set, validateProblems := flagset.CompileStrict(merged)
	merged = nil // the set holds what is published; let the rest go before encoding
	for i := range validateProblems {
		secret.redactProblem(&validateProblems[i]) // they may quote a secret's content
	}
	if set.Revision() == "" {
		return Report{Result: "failed", FlagErrors: flagErrs}, fmt.Errorf("revision: %w", validateProblems)
	}
	for _, p := range validateProblems {
		flagErrs = append(flagErrs, FlagError{Flag: p.Flag, Path: p.Path, Message: p.Message, Source: "validate"})
	}
	secret.redactFlagErrors(flagErrs)
	for _, fe := range flagErrs {
		d.metrics.FlagErrors.WithLabelValues(fe.Source).Inc()
	}
	set, err := d.applyExpiry(set)
	if err != nil {
		return Report{Result: "failed", FlagErrors: flagErrs}, err
	}
	rev := set.Revision()
	keys := set.Keys()

	d.mu.Lock()
	d.flagErrors = flagErrs
	cur := d.current
	d.mu.Unlock()
	rep := Report{Result: "unchanged", Revision: rev, Flags: len(keys), FlagErrors: flagErrs}
	if cur == nil || cur.revision != rev {
		if !force && cur != nil {
			if msg, removed := d.checkGuards(cur.keys, keys); msg != "" {
				d.metrics.GuardTrips.Inc()
				d.mu.Lock()
				repeated := d.guard == msg
				d.guard = msg
				d.mu.Unlock()
				if !repeated && d.notifying() { // one alert per finding, not one per sync while it lasts
					d.notifier.Notify(notify.GuardEvent(d.cfg.FlagSetID, msg, removed, d.now()))
				}
				rep.Result = "refused"
				rep.Revision, rep.Flags, rep.Generation = cur.revision, len(cur.keys), cur.generation
				_ = d.catchUp(ctx) // output errors are in the status; the guard is the news
				return rep, errors.Join(append(errs, fmt.Errorf("%w: %s", ErrGuard, msg))...)
			}
		}
		d.mu.Lock()
		gen := max(d.lastGen+1, d.now().UnixMilli())
		d.mu.Unlock()
		snap := stamp(set, gen, keys, d.now())
		snap.secret = secret
		d.mu.Lock()
		d.current, d.lastGen, d.guard = snap, gen, ""
		d.mu.Unlock()
		d.metrics.FlagsPublished.Set(float64(len(keys)))
		rep.Result = "published"
		d.notifyPublish(cur, snap)
	} else if cur.secret == nil {
		// The snapshot read back at start did not say which flags are secret; this
		// sync compiled the same flags and knows.
		known := *cur
		known.secret = secret
		d.mu.Lock()
		d.current = &known
		d.mu.Unlock()
	}
	if err := d.catchUp(ctx); err != nil {
		errs = append(errs, err)
	}
	d.mu.Lock()
	rep.Generation = d.current.generation
	d.mu.Unlock()
	return rep, errors.Join(errs...)
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

// checkGuards returns why publishing next over prev is refused ("" if it is not) and
// the flags the refused publish would have removed.
func (d *Daemon) checkGuards(prev, next []string) (string, []string) {
	if len(prev) == 0 {
		return "", nil
	}
	if len(next) == 0 && !d.cfg.Guards.AllowEmpty {
		return fmt.Sprintf("the new snapshot is empty and the previous one had %d flags (guards.allowEmpty is false)", len(prev)), prev
	}
	in := make(map[string]bool, len(next))
	for _, k := range next {
		in[k] = true
	}
	var removed []string
	for _, k := range prev {
		if !in[k] {
			removed = append(removed, k)
		}
	}
	frac := float64(len(removed)) / float64(len(prev))
	if len(next) > 0 && frac > d.cfg.Guards.RemovedFraction() {
		shown := removed
		if len(shown) > 10 {
			shown = append(shown[:10:10], fmt.Sprintf("... %d more", len(removed)-10))
		}
		return fmt.Sprintf("the new snapshot removes %d of %d flags (%.0f%%), more than guards.maxRemovedFraction %v: %s",
			len(removed), len(prev), frac*100, d.cfg.Guards.RemovedFraction(), strings.Join(shown, ", ")), removed
	}
	return "", nil
}

// fetchAll fetches every source concurrently, each with its own timeout, and records
// the outcome. A failed source keeps its last good result.
func (d *Daemon) fetchAll(ctx context.Context) []error {
	errs := make([]error, len(d.srcs))
	var wg sync.WaitGroup
	for i, s := range d.srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
				errs[i] = fmt.Errorf("source %s: %w", s.cfg.Name, err)
				d.metrics.SourceErrors.WithLabelValues(s.cfg.Name).Inc()
				d.log.Warn("source fetch failed; keeping its last good result", "source", s.cfg.Name, "err", err)
				d.mu.Lock()
				s.lastError, s.lastErrorAt = err.Error(), now.UTC()
				d.mu.Unlock()
				return
			}
			d.metrics.SourceLastSuccess.WithLabelValues(s.cfg.Name).Set(float64(now.UnixMilli()) / 1000)
			d.mu.Lock()
			same := s.last == res // a source may return its previous result when nothing changed
			s.last, s.lastSuccess, s.lastError = res, now.UTC(), ""
			d.mu.Unlock()
			if !same {
				for _, p := range res.Problems {
					secretFlags(res.Secret).redactProblem(&p)
					d.log.Warn("flag problem", "source", s.cfg.Name, "flag", p.Flag, "path", p.Path, "problem", p.Message)
				}
			}
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
			if rev, ok := o.out.check(pctx); ok {
				d.mu.Lock()
				o.revision = rev
				d.mu.Unlock()
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
			o.revision, o.lastSuccess, o.lastError = cur.revision, now, ""
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

// Run syncs now, then on the schedule and shortly after watch events (each source
// with its own watchDebounce), and runs the expiry cleanup on cleanup.schedule, until
// ctx is done. Syncs are single-flight: changes signalled during a sync cause one
// follow-up sync. A sync in progress when ctx ends still finishes its publish.
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
	deb := newDebouncer(debounces)
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
	// watchSync syncs when a watched source is due and re-arms the timer for the
	// sources still waiting out their debounce. Signals that arrive during the sync
	// leave one wake-up queued: exactly one follow-up sync.
	watchSync := func() {
		if due, _ := deb.fire(time.Now()); due {
			_, _ = d.Sync(ctx, false)
			afterSync()
		}
		_, next := deb.fire(time.Now())
		debounce.Stop()
		if next >= 0 {
			debounce.Reset(next)
		}
	}
	_, _ = d.Sync(ctx, false)
	afterSync()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-deb.wake:
			deb.take(time.Now())
			watchSync()
		case <-debounce.C:
			watchSync()
		case <-ticks:
			_, _ = d.Sync(ctx, false)
			afterSync()
		case <-cleanups:
			_, _ = d.Cleanup(ctx)
		case <-retry.C:
			d.syncMu.Lock()
			_ = d.catchUp(ctx)
			d.syncMu.Unlock()
			afterSync()
		}
	}
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
}

// OutputStatus describes one output.
type OutputStatus struct {
	Name        string     `json:"name"`
	Target      string     `json:"target"`
	Revision    string     `json:"revision,omitempty"`
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
	// Expiry lists the flags expiring soon, in their grace period, expired or with an
	// invalid expiresAt, with owner and source (docs/LIFECYCLE.md).
	Expiry []lifecycle.Finding `json:"expiry"`
}

// Status reports the daemon's state. It never contains source values or secrets.
func (d *Daemon) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := Status{FlagSetID: d.cfg.FlagSetID, Ready: d.ready, FlagErrors: append([]FlagError{}, d.flagErrors...), Guard: d.guard,
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
		ss := SourceStatus{Name: s.cfg.Name, Type: s.cfg.Type, LastError: s.lastError}
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
		st.Sources = append(st.Sources, ss)
	}
	for _, o := range d.outs {
		os := OutputStatus{Name: o.out.name(), Target: o.out.target(), Revision: o.revision, LastError: o.lastError}
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
