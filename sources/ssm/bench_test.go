package ssm

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/flagsync/flagsync/internal/testsvc"
)

// BenchmarkSync measures syncs of 1,000 parameters (use -benchtime=5x): a full sync,
// an incremental sync with no change and one with 3 changed parameters, each
// reporting its API calls per sync. "moto" is moto_server (which serves
// DescribeParameters 10 per page whatever MaxResults says); "aws-paging" is the
// protocol fake that pages like AWS (50 per page). Except for the last case the
// client-side rate limit is lifted, to time the servers rather than the limiter.
func BenchmarkSync(b *testing.B) {
	m := testsvc.StartMoto(b)
	mc := motoClient(b, m)
	seed1000(b, mc)
	f := newFakeSSM(b)
	seedFake(f, 1000)
	servers := []struct {
		name, url string
		change    func(name, value string)
	}{
		{"moto", m.URL, func(name, value string) { put(b, mc, name, value, types.ParameterTypeString) }},
		{"aws-paging", f.srv.URL, f.put},
	}
	for _, srv := range servers {
		b.Run(srv.name+"/full", func(b *testing.B) {
			src := newTestSource(b, srv.url, Config{Path: "/flags/prod/", FullSyncEvery: 1}, Options{})
			benchFetch(b, src, nil)
		})
		b.Run(srv.name+"/incremental-nochange", func(b *testing.B) {
			src := newTestSource(b, srv.url, Config{Path: "/flags/prod/", FullSyncEvery: 1 << 30}, Options{})
			benchFetch(b, src, nil)
		})
		b.Run(srv.name+"/incremental-3changed", func(b *testing.B) {
			src := newTestSource(b, srv.url, Config{Path: "/flags/prod/", FullSyncEvery: 1 << 30}, Options{})
			n := 0
			benchFetch(b, src, func() {
				for range 3 {
					n++
					srv.change(fmt.Sprintf("/flags/prod/f%04d", n%900), fmt.Sprintf("v%d", n))
				}
			})
		})
	}
	// The default client-side limit (20 requests/s, 1s burst) against the AWS-paging
	// fake: what a full sync of 1,000 parameters costs in wall time under the cap.
	b.Run("aws-paging/full-rateLimit=20", func(b *testing.B) {
		src := newTestSource(b, f.srv.URL, Config{Path: "/flags/prod/", FullSyncEvery: 1, RateLimit: DefaultRateLimit}, Options{})
		benchFetch(b, src, nil)
	})
}

// benchFetch primes src with one fetch, then times b.N fetches (change runs before
// each, untimed) and reports the API calls of the last one.
func benchFetch(b *testing.B, src *Source, change func()) {
	ctx := context.Background()
	if _, err := src.Fetch(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if change != nil {
			b.StopTimer()
			change()
			b.StartTimer()
		}
		if _, err := src.Fetch(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	st := src.LastStats()
	for _, op := range []string{OpGetParametersByPath, OpDescribeParameters, OpGetParameters} {
		b.ReportMetric(float64(st.Calls[op]), op+"-calls/sync")
	}
	b.ReportMetric(float64(st.Changed), "changed/sync")
}
