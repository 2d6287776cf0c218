package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/transport"
)

// BenchmarkOutputRepair measures how long a running daemon (10k flags, schedule 1h,
// so only the output watch can repair) takes to put its snapshot back:
//   - file-deleted: from os.Remove of the output file until it holds the revision
//     again. Goal: ≤ 1 s.
//   - redis-restarted: from a restarted, empty redis-server accepting connections
//     (after kill -9) until the revision key is back. Goal: ≤ 2 s.
//
// Each iteration is one fault; p50/p99/max are reported in ms.
func BenchmarkOutputRepair(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "flags.json")
	out := filepath.Join(dir, "out", "flags.json")
	if err := transport.WriteFileAtomic(src, genFlags(10000, "start"), 0o644); err != nil {
		b.Fatal(err)
	}
	r := testsvc.StartRedis(b)
	cfg, err := ParseConfig([]byte(fmt.Sprintf(`flagSetId: bench
schedule: "@every 1h"
sources: [{name: git, type: file, path: %q}]
outputs:
  file: {path: %q}
  redis: {url: "redis://%s/0"}
log: {level: error}
`, src, out, r.Addr)), nil)
	if err != nil {
		b.Fatal(err)
	}
	d, err := New(cfg, Options{Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(d.Close)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr})
	b.Cleanup(func() { rc.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	for !d.Ready() {
		time.Sleep(10 * time.Millisecond)
	}
	want := d.Status().Revision

	measure := func(b *testing.B, fault func(), back func() bool) {
		var lat []time.Duration
		for b.Loop() {
			fault()
			start := time.Now()
			for !back() {
				if time.Since(start) > 30*time.Second {
					b.Fatal("not repaired within 30 s")
				}
				time.Sleep(time.Millisecond)
			}
			lat = append(lat, time.Since(start))
			// Let the daemon see its own repair before the next fault.
			time.Sleep(2 * redisCheckInterval)
		}
		testsvc.ReportLatencies(b, "", lat)
		b.ReportMetric(float64(len(lat)), "faults")
	}
	b.Run("file-deleted", func(b *testing.B) {
		measure(b, func() {
			if err := os.Remove(out); err != nil {
				b.Fatal(err)
			}
		}, func() bool {
			data, err := os.ReadFile(out)
			return err == nil && holdingOf(data).revision == want
		})
	})
	b.Run("redis-restarted", func(b *testing.B) {
		measure(b, func() {
			r.Stop() // kill -9
			r.Start()
		}, func() bool {
			rev, err := transport.ReadRevision(context.Background(), rc, "flagsync:bench")
			return err == nil && rev == want
		})
	})
}
