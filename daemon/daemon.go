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
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

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
