package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/flagsync/flagsync/ofrep/ofreptest"
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
