package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/transport"
)

// cpuTime is the process's CPU time. The benchmarks report it per operation next to
// the wall time (cpu-ns/op): on a machine shared with other work the wall time
// includes waiting for a core, the CPU time does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation since start.
func reportCPU(b *testing.B, start time.Duration, unit string, scale float64) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/scale, unit)
}

// Goals (docs in the report): static <= 100 ns and 0 allocs, targeting <= 600 ns,
// reload of 10k flags <= 50 ms, Redis publish -> provider p99 <= 50 ms on loopback.

func BenchmarkProvider(b *testing.B) {
	path := filepath.Join(b.TempDir(), "flags.json")
	newSnapshot(1).
		with("static_flag", true).
		withFlag("targeted", map[string]any{"on": true, "off": false}, "off",
			`{"if": [{"and": [
				{"in": [{"var": "email"}, ["a@example.com", "b@example.com", "c@example.com"]]},
				{">=": [{"var": "age"}, 18]}
			]}, "on", "off"]}`).
		writeFile(b, path)
	p := NewFile(path, WithPollInterval(never))
	if err := startDirect(b, p); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()

	b.Run("static", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		for b.Loop() {
			if r := p.BooleanEvaluation(ctx, "static_flag", false, nil); !r.Value {
				b.Fatal("static_flag is false")
			}
		}
		reportCPU(b, start, "cpu-ns/op", 1)
	})
	b.Run("targeting", func(b *testing.B) {
		flat := openfeature.FlattenedContext{"targetingKey": "user-1", "email": "b@example.com", "age": 30}
		b.ReportAllocs()
		start := cpuTime()
		for b.Loop() {
			if r := p.BooleanEvaluation(ctx, "targeted", false, flat); !r.Value {
				b.Fatalf("targeted = %+v", r)
			}
		}
		reportCPU(b, start, "cpu-ns/op", 1)
	})
	b.Run("client_static", func(b *testing.B) {
		// A second provider on the same file: the first is owned by this benchmark.
		api := isolated.NewAPI()
		b.Cleanup(func() { _ = api.Shutdown(context.Background()) })
		if err := api.SetProviderAndWait(ctx, NewFile(path, WithPollInterval(never))); err != nil {
			b.Fatal(err)
		}
		client := api.NewClient()
		ec := openfeature.EvaluationContext{}
		b.ReportAllocs()
		start := cpuTime()
		for b.Loop() {
			if v, err := client.BooleanValue(ctx, "static_flag", false, ec); err != nil || !v {
				b.Fatalf("static_flag = %v, %v", v, err)
			}
		}
		reportCPU(b, start, "cpu-ns/op", 1)
	})
}

// BenchmarkReload measures one reload of a 10,000-flag snapshot file: open, read,
// parse, compile, diff against the served set and swap.
func BenchmarkReload(b *testing.B) {
	b.Run("10k", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "flags.json")
		s := newSnapshot(1)
		for i := range 10_000 {
			key := fmt.Sprintf("flag_%05d", i)
			if i%4 == 0 {
				s.withFlag(key, map[string]any{"on": true, "off": false}, "off",
					fmt.Sprintf(`{"if": [{"in": [{"var": "email"}, ["u%d@example.com"]]}, "on", null]}`, i))
			} else {
				s.with(key, fmt.Sprintf("value-%d", i))
			}
		}
		s.writeFile(b, path)
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/1e6, "MB")
		p, src := reloadingProvider(b, path)
		start := cpuTime()
		for b.Loop() {
			// nil: treat the file as unseen, so every iteration really reloads.
			src.check(p, nil)
		}
		b.StopTimer()
		reportCPU(b, start, "cpu-ms/op", 1e6)
		if p.Snapshot() == nil || p.Snapshot().Len() != 10_000 {
			b.Fatalf("reloaded set has %v flags, want 10000", p.Snapshot().Len())
		}
	})
}

// BenchmarkReload10k measures one provider reload of a realistic 10,000-flag
// snapshot as the daemon publishes it (metadata.version set): a third of the flags
// target (in, ends_with, sem_ver, fractional), variants of every type, flag
// metadata (owner, description, source, expiresAt). "unchanged" re-reads the
// served file (a new publish of the same flags: the reader shares every flag
// with the served set); "all-changed" alternates between two files in which
// every flag's description differs, so every flag is decoded and compiled.
// Besides time and allocations it reports the heap the served set holds after
// a reload, less the heap before the provider existed, both after a GC: live-MB
// counts the live objects (HeapAlloc), retained-MB the spans holding them
// (HeapInuse, fragmentation included, so it varies more between runs).
func BenchmarkReload10k(b *testing.B) {
	dir := b.TempDir()
	served := filepath.Join(dir, "served.json")
	realisticSnapshot(10_000).writeFile(b, served)
	// Two versions without a generation: a provider never goes back to a lower one.
	paths := []string{filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")}
	for i, path := range paths {
		s := realisticSnapshot(10_000)
		s.generation = 0
		for _, f := range s.flags {
			f.Metadata[flagset.MetaDescription] = fmt.Sprintf("%s (version %d)", f.Metadata[flagset.MetaDescription], i)
		}
		s.writeFile(b, path)
	}
	fi, err := os.Stat(served)
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, reload func(p *Provider, src *fileSource, i int)) {
		baseLive, baseInuse := heapAfterGC()
		p, src := reloadingProvider(b, served)
		b.ReportAllocs()
		b.SetBytes(fi.Size())
		start := cpuTime()
		for i := 0; b.Loop(); i++ {
			reload(p, src, i)
		}
		b.StopTimer()
		reportCPU(b, start, "cpu-ms/op", 1e6)
		if p.Snapshot() == nil || p.Snapshot().Len() != 10_000 {
			b.Fatalf("reloaded set has %v flags, want 10000", p.Snapshot().Len())
		}
		live, inuse := heapAfterGC()
		b.ReportMetric(float64(live-baseLive)/1e6, "live-MB")
		b.ReportMetric(float64(inuse-baseInuse)/1e6, "retained-MB")
		runtime.KeepAlive(p)
	}
	b.Run("unchanged", func(b *testing.B) {
		run(b, func(p *Provider, src *fileSource, _ int) {
			src.check(p, nil) // nil: treat the file as unseen, so every iteration really reloads
		})
	})
	b.Run("all-changed", func(b *testing.B) {
		run(b, func(p *Provider, _ *fileSource, i int) {
			// what check does: read the file, then load it
			data, err := os.ReadFile(paths[i%2])
			if err != nil {
				b.Fatal(err)
			}
			if err := p.load(data, "bench"); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// reloadingProvider is a file provider of path that reloads only when the
// benchmark calls its source's check (no polling), with its events drained and
// shut down when b ends.
func reloadingProvider(b *testing.B, path string) (*Provider, *fileSource) {
	p := NewFile(path, WithPollInterval(never))
	drain := make(chan struct{})
	go func() {
		defer close(drain)
		for range p.EventChannel() {
		}
	}()
	b.Cleanup(func() { p.Shutdown(); <-drain })
	return p, p.src.(*fileSource)
}

// heapAfterGC returns the live heap and the in-use heap spans after a full collection.
func heapAfterGC() (live, inuse int64) {
	runtime.GC()
	runtime.GC() // the second collection frees what the first one's finalizers released
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc), int64(ms.HeapInuse)
}

// realisticSnapshot is n flags shaped like a production flag set: every third
// flag has targeting (one of four rule shapes), variants are booleans, strings,
// numbers or objects, and every flag has owner and description metadata.
func realisticSnapshot(n int) *testSnapshot {
	s := newSnapshot(1)
	rules := []string{
		`{"if": [{"in": [{"var": "country"}, ["CH", "DE", "AT", "FR"]]}, "on", {"fractional": [{"cat": [{"var": "targetingKey"}, "%[1]s"]}, ["on", 10], ["off", 90]]}]}`,
		`{"if": [{"ends_with": [{"var": "email"}, "@team%[2]d.example.com"]}, "on", "off"]}`,
		`{"if": [{"sem_ver": [{"var": "appVersion"}, ">=", "2.%[2]d.0"]}, "on", {"<": [{"var": "age"}, 18]}, "off", null]}`,
		`{"if": [{"and": [{"==": [{"var": "plan"}, "enterprise"]}, {">=": [{"var": "seats"}, %[2]d]}]}, "on", "off"]}`,
	}
	for i := range n {
		key := fmt.Sprintf("team%d.flag_%05d", i%20, i)
		f := &flagset.Flag{State: flagset.Enabled, Metadata: map[string]any{
			flagset.MetaOwner:       fmt.Sprintf("team-%d", i%20),
			flagset.MetaDescription: fmt.Sprintf("rollout %d of the checkout redesign", i),
		}}
		if i%10 == 0 {
			f.Metadata[flagset.MetaExpiresAt] = "2027-06-30T00:00:00Z"
		}
		if i%50 == 0 {
			f.State = flagset.Disabled
		}
		def := "off"
		switch i % 4 {
		case 0, 1:
			f.Variants = map[string]any{"on": true, "off": false}
		case 2:
			f.Variants = map[string]any{"on": fmt.Sprintf("blue-%d", i), "off": "grey"}
		default:
			f.Variants = map[string]any{"on": map[string]any{"limit": float64(i), "mode": "fast"},
				"off": map[string]any{"limit": 0.0, "mode": "slow"}}
		}
		f.DefaultVariant = &def
		if i%3 == 0 {
			f.Targeting = json.RawMessage(fmt.Sprintf(rules[(i/3)%len(rules)], key, i%30))
		}
		s.flags[key] = f
	}
	return s
}

// BenchmarkRedisPropagation publishes b.N snapshots and measures, for each, the time
// from transport.Publish to the provider serving it (its CONFIGURATION_CHANGED event
// is emitted right after the swap). Reports p50 and p99 in milliseconds.
func BenchmarkRedisPropagation(b *testing.B) {
	_, c := newRedis(b)
	const prefix = "{flagsync:bench}"
	snap := func(i int) *testSnapshot {
		s := newSnapshot(int64(i))
		for k := range 100 {
			s.with(fmt.Sprintf("flag_%03d", k), k)
		}
		return s.with("counter", i)
	}
	snap(1).publish(b, c, prefix)
	p := NewRedis(c, prefix) // default 5s poll: Pub/Sub is what is measured
	if err := startDirect(b, p); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	gen := 1
	b.ResetTimer()
	for b.Loop() {
		gen++
		b.StopTimer()
		data, rev := snap(gen).encode(b)
		b.StartTimer()
		start := time.Now()
		if err := transport.Publish(ctx, c, prefix, data, rev, int64(gen)); err != nil {
			b.Fatal(err)
		}
		select {
		case ev := <-p.EventChannel():
			if ev.EventType != openfeature.ProviderConfigChange {
				b.Fatalf("event %s: %s", ev.EventType, ev.Message)
			}
		case <-time.After(10 * time.Second):
			b.Fatalf("generation %d not seen within 10s", gen)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	if v := intValue(p, "counter"); v.Value != int64(gen) {
		b.Fatalf("counter = %+v, want %d", v, gen)
	}
	testsvc.ReportLatencies(b, "", lat)
}
