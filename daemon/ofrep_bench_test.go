package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/ofrep"
	"github.com/flagsync/flagsync/ofrep/ofreptest"
	"github.com/flagsync/flagsync/transport"
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
	ofreptest.BenchSingle(b, s, "bench-key")
}

// BenchmarkOFREPEventLatencyDaemon measures, with 100 OFREP event stream clients on
// the daemon's own server (real HTTP on loopback), the time from the start of a sync
// that publishes a change (read the file source, merge, validate, write the file
// output, serve) until each client has read the refetchEvaluation event.
func BenchmarkOFREPEventLatencyDaemon(b *testing.B) {
	const clients = 100
	dir := b.TempDir()
	flags := filepath.Join(dir, "flags.yaml")
	doc := func(i int) []byte {
		return []byte(fmt.Sprintf("flags:\n  color:\n    state: ENABLED\n    variants: {red: \"#f00\", blue: \"#00f\"}\n    defaultVariant: %s\n", []string{"red", "blue"}[i%2]))
	}
	if err := os.WriteFile(flags, doc(0), 0o644); err != nil {
		b.Fatal(err)
	}
	cfgText := fmt.Sprintf("flagSetId: bench\nwatchDebounce: 1ms\nsources:\n  - {name: git, type: file, path: %q}\noutputs:\n  file: {path: %q}\nhttp:\n  ofrep: {maxEventStreams: %d}\n",
		flags, filepath.Join(dir, "out.json"), clients)
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
	srv := httptest.NewServer(s)
	defer srv.Close()
	defer s.CloseStreams()
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: clients + 1, MaxIdleConnsPerHost: clients + 1}}
	streams := make([]*ofreptest.Stream, clients)
	for i := range streams {
		streams[i] = ofreptest.OpenStream(b, client, srv.URL+ofrep.EventStreamPath, nil)
		if _, err := streams[i].Next(10 * time.Second); err != nil { // the revision served at connect
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N*clients)
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		if err := transport.WriteFileAtomic(flags, doc(i), 0o644); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if rep, err := d.Sync(context.Background(), false); err != nil || rep.Result != "published" {
			b.Fatalf("sync %d: %+v %v", i, rep, err)
		}
		rev := d.FlagSet().Revision()
		for _, st := range streams {
			e, err := st.Next(10 * time.Second)
			if err != nil || e.ID != rev {
				b.Fatalf("event %d: %+v %v (want %s)", i, e, err, rev)
			}
			lat = append(lat, e.At.Sub(start))
		}
	}
	b.StopTimer()
	testsvc.ReportLatencies(b, "", lat)
}
