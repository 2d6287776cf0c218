package flagdsync

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the sync port's Prometheus metrics (on the daemon's registry, so
// /metrics shows them).
type Metrics struct {
	// Streams is the number of open SyncFlags streams.
	Streams prometheus.Gauge
	// Sent counts flag configurations sent (stream messages and FetchAllFlags answers).
	Sent prometheus.Counter
	// Refused counts calls refused, by gRPC status code (credentials, selector).
	Refused *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flagsync_flagd_sync_streams",
			Help: "Open flagd SyncFlags streams.",
		}),
		Sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flagsync_flagd_sync_sent_total",
			Help: "Flag configurations sent on the flagd sync port.",
		}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagsync_flagd_sync_refused_total",
			Help: "Calls to the flagd sync port refused, by gRPC status code.",
		}, []string{"code"}),
	}
	if reg != nil {
		reg.MustRegister(m.Streams, m.Sent, m.Refused)
	}
	return m
}
