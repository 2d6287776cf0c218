package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagsync/flagsync/daemon"
)

// config writes a configuration reading flags and publishing to out, listening on
// listen, and returns its path and the loaded configuration.
func config(t *testing.T, dir, flags, out, listen string) (string, *daemon.Config) {
	t.Helper()
	path := filepath.Join(dir, "flagsync.yaml")
	text := fmt.Sprintf("flagSetId: sup\nschedule: \"@every 1h\"\nsources:\n  - {name: git, type: file, path: %q}\noutputs:\n  file: {path: %q}\nhttp: {listen: %q}\nlog: {level: info}\n", flags, out, listen)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := daemon.LoadConfig(path, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return path, cfg
}

func writeFlag(t *testing.T, path string, keys ...string) {
	t.Helper()
	text := "flags:\n"
	for _, key := range keys {
		text += fmt.Sprintf("  %s: {state: ENABLED, variants: {\"on\": true, \"off\": false}, defaultVariant: \"on\"}\n", key)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func holds(path, key string) func() bool {
	return func() bool {
		b, err := os.ReadFile(path)
		return err == nil && strings.Contains(string(b), `"`+key+`"`)
	}
}

// TestRunReloadsAndStops: the supervisor publishes, swaps the daemon on a reload
// (the new configuration's source is what gets published) and returns nil when its
// context ends.
func TestRunReloadsAndStops(t *testing.T) {
	dir := t.TempDir()
	first, second, out := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml"), filepath.Join(dir, "out.json")
	writeFlag(t, first, "from_first")
	// The second file keeps the first flag: the removal guard would hold a reload that
	// removed it, and this test is about the reload.
	writeFlag(t, second, "from_first", "from_second")
	path, cfg := config(t, dir, first, out, "127.0.0.1:0")

	ctx, cancel := context.WithCancel(context.Background())
	reload := make(chan os.Signal, 1)
	level := new(slog.LevelVar)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Path: path, Config: cfg, Level: level, Reload: reload,
			Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: level}))})
	}()
	waitFor(t, "the first publish", holds(out, "from_first"))

	config(t, dir, second, out, "127.0.0.1:0")
	if err := os.WriteFile(path, []byte(strings.Replace(mustRead(t, path), "level: info", "level: debug", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	reload <- os.Interrupt
	waitFor(t, "the reloaded configuration's publish", holds(out, "from_second"))
	if level.Level() != slog.LevelDebug {
		t.Errorf("log level after reload = %v, want debug", level.Level())
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after its context ended, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// TestRunListenerTaken: a port in use is an error naming http.listen, not a
// configuration error, and nothing keeps running.
func TestRunListenerTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	flags := filepath.Join(dir, "a.yaml")
	writeFlag(t, flags, "x")
	path, cfg := config(t, dir, flags, filepath.Join(dir, "out.json"), taken.Addr().String())
	err = Run(context.Background(), Options{Path: path, Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var cfgErr *ConfigError
	if err == nil || !strings.Contains(err.Error(), "http.listen") || errors.As(err, &cfgErr) {
		t.Fatalf("Run = %v, want a non-configuration error naming http.listen", err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
