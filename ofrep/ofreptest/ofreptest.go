// Package ofreptest holds test support shared by the OFREP handler's own tests and
// the daemon's, which serves the same API through its server.
package ofreptest

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// BenchSingle serves h on a loopback TCP listener and measures single-flag
// evaluations of the flag "color" (context: targetingKey user-42, email
// vip@example.com, sent with X-API-Key apiKey) through it with parallel keep-alive
// clients, reporting req/s. Every response must have status 200.
func BenchSingle(b *testing.B, h http.Handler, apiKey string) {
	b.Helper()
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
			req.Header.Set("X-API-Key", apiKey)
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
