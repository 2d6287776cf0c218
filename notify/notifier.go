package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// DefaultQueueSize bounds each sink's queue when Config.QueueSize is 0.
const DefaultQueueSize = 256

// Options are the notifier's dependencies.
type Options struct {
	Logger *slog.Logger
	// HTTPClient sends webhooks (default: a client without a global timeout; each
	// attempt has the webhook's timeout).
	HTTPClient *http.Client
	// Environment is copied into every event (the daemon's `environment:`).
	Environment string
	// Metrics receives the counters (default: new ones). A daemon passes the same
	// Metrics to every notifier it builds across config reloads, registered once.
	Metrics *Metrics
}

// Notifier fans events out to its sinks. Safe for concurrent use.
type Notifier struct {
	log     *slog.Logger
	env     string
	sinks   []*sink
	metrics *Metrics

	mu     sync.RWMutex // guards closed against the queues being closed under a sender
	closed bool
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type sink struct {
	name    string
	filter  Filter
	queue   chan Event
	deliver func(ctx context.Context, ev Event) error
}

// New validates cfg and starts one worker per sink. Call Close to flush and stop.
func New(cfg Config, opts Options) (*Notifier, error) {
	if err := cfg.Validate("notify"); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	size := cfg.QueueSize
	if size == 0 {
		size = DefaultQueueSize
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	n := &Notifier{log: opts.Logger, env: opts.Environment, metrics: opts.Metrics}
	for _, w := range cfg.Webhooks {
		wh := &webhook{cfg: w, client: opts.HTTPClient, metrics: n.metrics, log: opts.Logger}
		n.sinks = append(n.sinks, &sink{name: w.Name, filter: w.Filter, queue: make(chan Event, size), deliver: wh.deliver})
	}
	for _, e := range cfg.Exec {
		ex := &execSink{cfg: e, log: opts.Logger}
		n.sinks = append(n.sinks, &sink{name: e.Name, filter: e.Filter, queue: make(chan Event, size), deliver: ex.deliver})
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	for _, s := range n.sinks {
		n.metrics.init(s.name)
		n.wg.Add(1)
		go n.work(ctx, s)
	}
	return n, nil
}

// Active tells whether any sink is configured (a nil Notifier has none), so callers
// can skip building events nobody receives.
func (n *Notifier) Active() bool { return n != nil && len(n.sinks) > 0 }

// Notify queues ev for every sink whose filter selects something of it. It never
// blocks: a full queue drops the event for that sink (counted in
// flagsync_notify_dropped_total). It returns how many sinks queued it.
func (n *Notifier) Notify(ev Event) int {
	if n == nil {
		return 0
	}
	if ev.Environment == "" {
		ev.Environment = n.env
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		return 0
	}
	queued := 0
	for _, s := range n.sinks {
		filtered, ok := s.filter.Apply(ev)
		if !ok {
			continue
		}
		select {
		case s.queue <- filtered:
			queued++
		default:
			n.metrics.dropped.WithLabelValues(s.name).Inc()
			n.log.Warn("notify queue full, event dropped", "sink", s.name, "type", ev.Type)
		}
	}
	return queued
}

func (n *Notifier) work(ctx context.Context, s *sink) {
	defer n.wg.Done()
	for ev := range s.queue {
		if err := s.deliver(ctx, ev); err != nil {
			n.metrics.deliveries.WithLabelValues(s.name, "failed").Inc()
			n.log.Warn("notify delivery failed", "sink", s.name, "type", ev.Type, "err", err)
			continue
		}
		n.metrics.deliveries.WithLabelValues(s.name, "ok").Inc()
	}
}

// Close stops accepting events and waits until the queued ones are delivered, or until
// ctx is done, in which case running deliveries are cancelled and ctx's error returned.
func (n *Notifier) Close(ctx context.Context) error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		for _, s := range n.sinks {
			close(s.queue)
		}
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
		n.cancel()
		return nil
	case <-ctx.Done():
		n.cancel()
		<-done
		return fmt.Errorf("notify close: %w", ctx.Err())
	}
}

// Metrics returns the notifier's counters, for the daemon to register on its registry.
func (n *Notifier) Metrics() *Metrics { return n.metrics }

// Metrics are the notifier's Prometheus counters. They are not registered anywhere
// until the owner calls Register with its own registry.
type Metrics struct {
	deliveries *prometheus.CounterVec
	retries    *prometheus.CounterVec
	dropped    *prometheus.CounterVec
}

// NewMetrics creates unregistered counters (see Register).
func NewMetrics() *Metrics {
	return &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagsync_notify_deliveries_total",
			Help: "Notification deliveries by sink and result (ok, failed after all attempts).",
		}, []string{"sink", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagsync_notify_retries_total",
			Help: "Webhook attempts that failed and were retried.",
		}, []string{"sink"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagsync_notify_dropped_total",
			Help: "Events dropped because the sink's queue was full.",
		}, []string{"sink"}),
	}
}

func (m *Metrics) init(name string) {
	m.deliveries.WithLabelValues(name, "ok")
	m.deliveries.WithLabelValues(name, "failed")
	m.retries.WithLabelValues(name)
	m.dropped.WithLabelValues(name)
}

// Register adds the counters to reg.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.deliveries, m.retries, m.dropped} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register notify metrics: %w", err)
		}
	}
	return nil
}

// Stats is a point-in-time copy of one sink's counters.
type Stats struct {
	Delivered, Failed, Retries, Dropped uint64
}

// Stats returns the counters of sink name (for status pages and tests).
func (m *Metrics) Stats(name string) Stats {
	return Stats{
		Delivered: counterValue(m.deliveries.WithLabelValues(name, "ok")),
		Failed:    counterValue(m.deliveries.WithLabelValues(name, "failed")),
		Retries:   counterValue(m.retries.WithLabelValues(name)),
		Dropped:   counterValue(m.dropped.WithLabelValues(name)),
	}
}

func counterValue(c prometheus.Counter) uint64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	m := <-ch
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		return 0
	}
	return uint64(pb.GetCounter().GetValue())
}

func newDeliveryID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
