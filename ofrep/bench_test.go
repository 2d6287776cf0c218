package ofrep_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/testsvc"

	"github.com/flagsync/flagsync/ofrep"
	"github.com/flagsync/flagsync/ofrep/ofreptest"
)

// BenchmarkOFREPSingle measures single-flag evaluations per second through a real
// HTTP server on a loopback TCP listener, with parallel keep-alive clients.
func BenchmarkOFREPSingle(b *testing.B) {
	h, _ := newHandler(b, ofrep.Options{APIKeys: []string{"bench-key"}})
	ofreptest.BenchSingle(b, h, "bench-key")
}

// BenchmarkOFREPEventLatency measures how long a change notification takes from
// Announce to each of 100 event stream clients (real HTTP on loopback, one
// connection each): p50/p99/max over every client and announcement.
func BenchmarkOFREPEventLatency(b *testing.B) {
	const clients = 100
	ev := ofrep.NewEvents(ofrep.EventsOptions{MaxStreams: clients})
	h, _ := newHandler(b, ofrep.Options{Events: ev})
	srv := httptest.NewServer(h)
	b.Cleanup(func() { ev.Close(); srv.Close() })
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: clients + 1, MaxIdleConnsPerHost: clients + 1}}
	streams := make([]*ofreptest.Stream, clients)
	for i := range streams {
		streams[i] = ofreptest.OpenStream(b, client, srv.URL+ofrep.EventStreamPath, nil)
	}
	for ev.Streams() < clients {
		time.Sleep(time.Millisecond)
	}
	lat := make([]time.Duration, 0, b.N*clients)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rev := fmt.Sprintf("rev-%d", i)
		start := time.Now()
		ev.Announce(rev)
		for _, s := range streams {
			e, err := s.Next(10 * time.Second)
			if err != nil || e.ID != rev {
				b.Fatalf("stream: %+v %v (want %s)", e, err, rev)
			}
			lat = append(lat, e.At.Sub(start))
		}
	}
	b.StopTimer()
	testsvc.ReportLatencies(b, "", lat)
}
