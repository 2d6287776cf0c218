package daemon

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flagsync/flagsync/notify"
)

// Metrics are the daemon's Prometheus metrics in their own registry (no global
// state). One Metrics outlives config reloads so counters keep counting.
type Metrics struct {
	Registry *prometheus.Registry

	SyncDuration      *prometheus.HistogramVec
	SourceErrors      *prometheus.CounterVec
	SourceLastSuccess *prometheus.GaugeVec
	FlagsPublished    prometheus.Gauge
	Publishes         *prometheus.CounterVec
	OutputErrors      *prometheus.CounterVec
	OutputRepairs     *prometheus.CounterVec
	GuardTrips        prometheus.Counter
	FlagErrors        *prometheus.CounterVec
	SourceAPICalls    *prometheus.CounterVec
	FlagsExpiry       *prometheus.GaugeVec
	CleanupActions    *prometheus.CounterVec
	// SourceHeld is 1 while a source is held by its guard; GuardReleases counts the
	// holds that ended (back within bounds or released by an operator).
	SourceHeld    *prometheus.GaugeVec
	GuardReleases *prometheus.CounterVec
	// FlagRejected is 1 per flag and source while the source's value for the flag is
	// rejected; ValueRejections counts each distinct rejection once.
	FlagRejected    *prometheus.GaugeVec
	ValueRejections *prometheus.CounterVec
	// Notify are the notifier's counters, shared by the notifiers of every reload.
	Notify *notify.Metrics
	// HTTPRefused counts refused requests by route pattern and status code (never
	// by anything the client sent).
	HTTPRefused *prometheus.CounterVec
	// OFREPShed counts OFREP requests answered 429 (over http.ofrep.rateLimit).
	OFREPShed prometheus.Counter
}

// NewMetrics creates and registers the metrics.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		SyncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flagsync_sync_duration_seconds",
			Help:    "Duration of a sync (fetch, merge, validate, publish) by result.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"result"}),
		SourceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagsync_source_errors_total",
			Help: "Failed fetches by source.",
		}, []string{"source"}),
		SourceLastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flagsync_source_last_success_timestamp_seconds",
			Help: "Unix time of the last successful fetch by source.",
		}, []string{"source"}),
		FlagsPublished: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flagsync_flags_published",
			Help: "Number of flags in the current snapshot.",
		}),
		Publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagsync_publishes_total",
			Help: "Snapshots written by output.",
		}, []string{"output"}),
		OutputRepairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagsync_output_repairs_total",
			Help: "Times an output was found no longer holding the current snapshot (deleted, replaced, Redis restarted empty) and was rewritten.",
		}, []string{"output"}),
		OutputErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagsync_output_errors_total",
			Help: "Failed snapshot writes by output.",
		}, []string{"output"}),
		GuardTrips: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flagsync_guard_trips_total",
			Help: "Guard trips: sources held, or publishes refused (too many flags removed, or empty).",
		}),
		FlagErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagsync_flag_errors_total",
			Help: "Per-flag problems (flag left out or overlay ignored) by source; 'validate' for the merged snapshot.",
		}, []string{"source"}),
		SourceAPICalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagsync_source_api_calls_total",
			Help: "Remote API calls made by sources that report them (SSM), by operation.",
		}, []string{"source", "operation"}),
	}
	m.FlagsExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "flagsync_flags_expiry",
		Help: "Flags by expiry status at the last sync (expiring, grace, expired, invalid expiresAt).",
	}, []string{"status"})
	m.CleanupActions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flagsync_cleanup_actions_total",
		Help: "Cleanup decisions on expired flags by action and result (reported, done, dryRun, skipped).",
	}, []string{"action", "result"})
	m.SourceHeld = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "flagsync_source_held",
		Help: "1 while the source is held by its removal guard (its removals are withheld).",
	}, []string{"source"})
	m.GuardReleases = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flagsync_guard_releases_total",
		Help: "Holds that ended (back within bounds, or released by an operator), by source.",
	}, []string{"source"})
	m.FlagRejected = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "flagsync_flag_rejected",
		Help: "1 while a source's value for a flag is rejected (the flag keeps its last accepted contribution).",
	}, []string{"source", "flag"})
	m.ValueRejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flagsync_value_rejections_total",
		Help: "Distinct rejected values (did not parse, did not fit, invalid), by source; counted once per problem, not per sync.",
	}, []string{"source"})
	m.Registry.MustRegister(m.SourceHeld, m.GuardReleases, m.FlagRejected, m.ValueRejections)
	m.Notify = notify.NewMetrics()
	if err := m.Notify.Register(m.Registry); err != nil {
		panic(err) // a fresh registry: only a programming error gets here
	}
	m.HTTPRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flagsync_http_refused_total",
		Help: "HTTP requests refused by the auth and cross-site checks, by route pattern and status code.",
	}, []string{"route", "code"})
	m.OFREPShed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flagsync_ofrep_shed_total",
		Help: "OFREP requests answered 429 Too Many Requests with Retry-After (over http.ofrep.rateLimit).",
	})
	m.Registry.MustRegister(m.FlagsExpiry, m.CleanupActions, m.HTTPRefused, m.OFREPShed)
	m.Registry.MustRegister(m.SourceAPICalls, m.SyncDuration, m.SourceErrors, m.SourceLastSuccess, m.FlagsPublished,
		m.Publishes, m.OutputErrors, m.OutputRepairs, m.GuardTrips, m.FlagErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
