package analytics

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
)

// threadCPU is the CPU time of the calling OS thread (RUSAGE_THREAD). The benchmarks
// report it per op next to wall time: on a shared, overloaded machine wall time mostly
// measures waiting for a core, while thread CPU time is what the evaluation path itself
// spends (the writer goroutine runs on other threads and is not counted).
func threadCPU(b *testing.B) time.Duration { return rusage(b, 1 /* RUSAGE_THREAD */) }

// processCPU is the CPU time of the whole process (RUSAGE_SELF): with the writer
// goroutine and the garbage collector, what one evaluation costs the machine.
func processCPU(b *testing.B) time.Duration { return rusage(b, syscall.RUSAGE_SELF) }

func rusage(b *testing.B, who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func measure(b *testing.B, op func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	start, startProc := threadCPU(b), processCPU(b)
	for b.Loop() {
		op()
	}
	b.ReportMetric(float64(threadCPU(b)-start)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(processCPU(b)-startProc)/float64(b.N), "proc-cpu-ns/op")
}

type noopHook struct{ openfeature.UnimplementedHook }

// BenchmarkHookOverhead measures what the hook adds to one evaluation: a client
// evaluation with no hook, with an empty hook (the SDK's own cost of running hooks) and
// with the analytics hook, and the hook's Finally call alone. The hook's overhead is
// analytics-hook − noop-hook, or finally-only.
func BenchmarkHookOverhead(b *testing.B) {
	ctx := context.Background()
	ec := openfeature.NewEvaluationContext("user-1", map[string]any{"plan": "pro"})
	newHook := func(b *testing.B, bufferSize int) *Hook {
		h, err := New(Config{Dir: b.TempDir(), Attributes: []string{"plan"}, HashTargetingKey: true, BufferSize: bufferSize})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			b.ReportMetric(float64(h.Dropped()), "dropped")
			h.Close(ctx)
		})
		return h
	}

	b.Run("client/no-hook", func(b *testing.B) {
		c := newClient(b)
		measure(b, func() { c.Boolean(ctx, "checkout_v2", false, ec) })
	})
	b.Run("client/noop-hook", func(b *testing.B) {
		c := newClient(b)
		c.AddHooks(noopHook{})
		measure(b, func() { c.Boolean(ctx, "checkout_v2", false, ec) })
	})
	b.Run("client/analytics-hook", func(b *testing.B) {
		c := newClient(b)
		c.AddHooks(newHook(b, DefaultBufferSize))
		measure(b, func() { c.Boolean(ctx, "checkout_v2", false, ec) })
	})
	b.Run("finally-only", func(b *testing.B) {
		// The buffer holds a whole run of -benchtime 300000x, so the figure is for the
		// recording path, not the (cheaper) drop path: a tight loop outruns any writer.
		h := newHook(b, 1<<19)
		hc := openfeature.NewHookContext("checkout_v2", openfeature.Boolean, false, openfeature.ClientMetadata{}, openfeature.Metadata{}, ec)
		d := openfeature.InterfaceEvaluationDetails{Value: true}
		d.FlagKey, d.Variant, d.Reason = "checkout_v2", "on", openfeature.TargetingMatchReason
		measure(b, func() { h.Finally(ctx, hc, d, openfeature.HookHints{}) })
	})
}

// BenchmarkWriterRow measures the writer's formatting of one queued record (decode,
// timestamp, hashed targeting key, one attribute) without file I/O: the CPU the
// writer goroutine takes from the evaluating goroutines per evaluation.
func BenchmarkWriterRow(b *testing.B) {
	cfg := Config{Attributes: []string{"plan"}, HashTargetingKey: true}
	ec := openfeature.NewEvaluationContext("user-1", map[string]any{"plan": "pro"})
	var q queue
	start := time.Now().UnixNano()
	for i := range 1024 {
		q.add(start+int64(i)*1000, "checkout_v2", "on", string(openfeature.TargetingMatchReason), "", true, ec, cfg.Attributes)
	}
	w := newWriter(cfg, nil)
	var line []byte
	d := decoder{buf: q.buf}
	b.ReportAllocs()
	for b.Loop() {
		if !d.more() {
			d.off = 0
		}
		line, _ = w.appendRow(line[:0], &d, q.objs)
	}
}
