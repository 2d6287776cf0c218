package file_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagsync/flagsync/daemon"
)

const (
	rewriteFlags = 21      // flags in the rewritten file
	rewriteChunk = 4 << 10 // bytes per write
	noiseEvery   = 3 * time.Millisecond
	publishWait  = 5 * time.Second
)

// publishLog records the flag count of every snapshot the daemon publishes, from its
// "published" log records (one per output and publish).
type publishLog struct {
	mu     sync.Mutex
	counts []int
	seen   chan struct{}
}

func (l *publishLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *publishLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *publishLog) WithGroup(string) slog.Handler            { return l }
func (l *publishLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "published" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "flags" {
			l.mu.Lock()
			l.counts = append(l.counts, int(a.Value.Int64()))
			l.mu.Unlock()
			select {
			case l.seen <- struct{}{}:
			default:
			}
		}
		return true
	})
	return nil
}

// rewriteDoc is a flag document of rewriteFlags flags, about 1 KB each, so a rewrite
// takes several 4 KB writes; version changes one default so every rewrite publishes.
func rewriteDoc(version int) []byte {
	var b strings.Builder
	b.WriteString("flags:\n")
	for i := range rewriteFlags {
		def := "on"
		if i == 0 && version%2 == 1 {
			def = "off"
		}
		// Block style and a plain description: most cuts leave valid YAML.
		fmt.Fprintf(&b, "  flag_%02d:\n    state: ENABLED\n    variants:\n      \"on\": true\n      \"off\": false\n    defaultVariant: %q\n    metadata:\n      description: %s\n",
			i, def, strings.Repeat("padding so the document spans several chunks ", 20))
	}
	return []byte(b.String())
}

// rewriteInPlace truncates path and writes doc in 4 KB chunks with a pause of up to
// 10 ms between them (well under the file source's 100 ms debounce), like a program
// that writes its output in place. It returns the longest time the file stood half
// written between two writes, from the file's own modification times (what the
// source sees): on a loaded machine the writer can be descheduled for longer than the
// pause it asked for.
func rewriteInPlace(path string, doc []byte, rng *rand.Rand) (maxGap time.Duration, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	modified := func() (time.Time, error) {
		fi, err := f.Stat()
		if err != nil {
			return time.Time{}, err
		}
		return fi.ModTime(), nil
	}
	last, err := modified()
	if err != nil {
		return 0, err
	}
	for off := 0; off < len(doc); off += rewriteChunk {
		if _, err := f.Write(doc[off:min(off+rewriteChunk, len(doc))]); err != nil {
			return maxGap, err
		}
		m, err := modified()
		if err != nil {
			return maxGap, err
		}
		maxGap, last = max(maxGap, m.Sub(last)), m
		time.Sleep(time.Duration(rng.Int64N(int64(10 * time.Millisecond))))
	}
	return maxGap, f.Close()
}

// stallGap is the pause in the middle of a rewrite from which the file source's
// 100 ms quiet time (less the coarseness of file times) may take the half-written
// file as finished: such a partial publish is the per-source guard's to catch, not
// the quiet time's.
const stallGap = 80 * time.Millisecond

// runRewrites runs the real daemon on a file source rewritten in place n times, while
// a second, undebounced file source changes every 3 ms so syncs (which read every
// source) keep happening in the middle of rewrites. It returns the number of
// snapshots published with fewer flags than the complete file holds, how many were
// published in all, and how many rewrites stalled (stallGap) half written.
func runRewrites(tb testing.TB, n int) (partial, published, stalled int) {
	dir := tb.TempDir()
	main := filepath.Join(dir, "flags.yaml")
	noiseDir := filepath.Join(dir, "noise")
	if err := os.Mkdir(noiseDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	noise := filepath.Join(noiseDir, "noise.yaml")
	writeAtomic := func(path string, data []byte) {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			tb.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.WriteFile(main, rewriteDoc(0), 0o644); err != nil {
		tb.Fatal(err)
	}
	noiseDoc := []byte("flags:\n  noise: {state: ENABLED, variants: {\"on\": true}, defaultVariant: \"on\"}\n")
	writeAtomic(noise, noiseDoc)
	want := rewriteFlags + 1
	yml := fmt.Sprintf(`flagSetId: rewrite
sources:
  - {name: git, type: file, path: %q}
  - {name: noise, type: file, path: %q, watchDebounce: 0s}
schedule: "@every 1h"
outputs:
  file:
    path: %q
`, main, noise, filepath.Join(dir, "out.json"))
	cfg, err := daemon.ParseConfig([]byte(yml), func(string) (string, bool) { return "", false })
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	log := &publishLog{seen: make(chan struct{}, 1)}
	d, err := daemon.New(cfg, daemon.Options{Logger: slog.New(log)})
	if err != nil {
		tb.Fatalf("daemon: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = d.Run(ctx) })
	wg.Go(func() { // the noise source: a change every 3 ms, each by atomic rename
		for t := time.NewTicker(noiseEvery); ; {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
				writeAtomic(noise, noiseDoc)
			}
		}
	})
	defer func() { cancel(); wg.Wait(); d.Close() }()

	waitPublishes := func(count int) bool {
		deadline := time.After(publishWait)
		for {
			log.mu.Lock()
			got := len(log.counts)
			log.mu.Unlock()
			if got >= count {
				return true
			}
			select {
			case <-log.seen:
			case <-deadline:
				return false
			}
		}
	}
	if !waitPublishes(1) {
		tb.Fatal("no first snapshot")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 1; i <= n; i++ {
		log.mu.Lock()
		before := len(log.counts)
		log.mu.Unlock()
		gap, err := rewriteInPlace(main, rewriteDoc(i), rng)
		if err != nil {
			tb.Fatal(err)
		}
		if gap >= stallGap {
			tb.Logf("rewrite %d stalled half written for %s", i, gap)
			stalled++
		}
		// Each complete rewrite changes one default: wait for its publish.
		if !waitPublishes(before + 1) {
			tb.Fatalf("rewrite %d was never published", i)
		}
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for i, c := range log.counts {
		if c < want {
			tb.Logf("publish %d of %d has %d flags, want %d", i, len(log.counts), c, want)
			partial++
		}
	}
	return partial, len(log.counts), stalled
}

// TestInPlaceRewriteNeverPublishesPartialFile: a file source rewritten in place in
// 4 KB chunks while other syncs run is never published half written (a rewrite whose
// writer the machine stalled for about the quiet time may be, at most once).
func TestInPlaceRewriteNeverPublishesPartialFile(t *testing.T) {
	partial, published, stalled := runRewrites(t, 25)
	if partial > stalled {
		t.Fatalf("%d of %d snapshots were published with fewer than %d flags (%d rewrites stalled)", partial, published, rewriteFlags+1, stalled)
	}
}

// BenchmarkInPlaceRewrite counts partial publishes over b.N in-place rewrites (goal: 0
// over 1000; run with -benchtime=1000x).
func BenchmarkInPlaceRewrite(b *testing.B) {
	partial, published, stalled := runRewrites(b, b.N)
	b.ReportMetric(float64(partial), "partial-publishes")
	b.ReportMetric(float64(published), "publishes")
	b.ReportMetric(float64(stalled), "stalled-rewrites")
	b.ReportMetric(0, "ns/op")
}
