package ofrep_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/ofrep"
)

// BenchmarkOFREPSingle measures single-flag evaluations per second through a real
// HTTP server on a loopback TCP listener, with parallel keep-alive clients.
func BenchmarkOFREPSingle(b *testing.B) {
	h, _ := newHandler(b, ofrep.Options{APIKeys: []string{"bench-key"}})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	url := "http://" + l.Addr().String() + "/ofrep/v1/evaluate/flags/color"
	body := `{"context":{"targetingKey":"user-42","email":"vip@example.com"}}`
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-API-Key", "bench-key")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
