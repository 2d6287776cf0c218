package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkOFREPSingleDaemon is ofrep's BenchmarkOFREPSingle through the daemon's own
// server (mux, API key, current-set lookup) on a loopback TCP listener.
func BenchmarkOFREPSingleDaemon(b *testing.B) {
	dir := b.TempDir()
	flags := filepath.Join(dir, "flags.yaml")
	doc := `flags:
  color:
    state: ENABLED
    variants: {red: "#f00", blue: "#00f"}
    defaultVariant: red
    targeting: {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "blue", "red"]}
`
	if err := os.WriteFile(flags, []byte(doc), 0o644); err != nil {
		b.Fatal(err)
	}
	cfgText := fmt.Sprintf("flagSetId: bench\nsources:\n  - {name: git, type: file, path: %q}\noutputs:\n  file: {path: %q}\nhttp:\n  ofrep: {apiKeys: [bench-key]}\n",
		flags, filepath.Join(dir, "out.json"))
	cfg, err := ParseConfig([]byte(cfgText), nil)
	if err != nil {
		b.Fatal(err)
	}
	m := NewMetrics()
	d, err := New(cfg, Options{Metrics: m, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Sync(context.Background(), false); err != nil {
		b.Fatal(err)
	}
	s := NewServer(m)
	s.Set(d)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: s}
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
