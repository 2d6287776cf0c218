package testsvc

import (
	"slices"
	"testing"
	"time"
)

// ReportLatencies sorts lat and reports its p50, p99 and max on b in milliseconds, as
// "<prefix>p50-ms" and so on (prefix "" or e.g. "daemon-"). The quantiles are nearest
// rank, so every benchmark of the project states its latencies the same way.
func ReportLatencies(b *testing.B, prefix string, lat []time.Duration) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(Percentile(lat, 0.50)), prefix+"p50-ms")
	b.ReportMetric(ms(Percentile(lat, 0.99)), prefix+"p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), prefix+"max-ms")
}

// Percentile is the q-quantile (nearest rank) of sorted durations; 0 for none.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}
