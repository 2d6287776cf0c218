package flagdsync_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/flagsync/flagsync/flagdsync/syncv1"
	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/transport"
)

// benchDaemon is the built flagsync binary running `flagsync run` on one watched flag
// file (100 flags) with the flagd sync port on.
type benchDaemon struct {
	b     *testing.B
	cmd   *exec.Cmd
	flags string
	sync  string // the flagd sync address
	logs  bytes.Buffer
}

// benchFlags is 100 flags; color's variant is value, the marker the clients wait for.
func benchFlags(value string) string {
	var s strings.Builder
	s.WriteString(flagDoc(value))
	for i := range 99 {
		fmt.Fprintf(&s, "  flag_%02d:\n    state: ENABLED\n    variants: {\"on\": true, \"off\": false}\n    defaultVariant: \"off\"\n    targeting: {if: [{ends_with: [{var: email}, \"@example.com\"]}, \"on\", null]}\n", i)
	}
	return s.String()
}

func startBenchDaemon(b *testing.B) *benchDaemon {
	b.Helper()
	dir := b.TempDir()
	bin := filepath.Join(dir, "flagsync")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/flagsync/flagsync/cmd/flagsync").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	d := &benchDaemon{b: b, flags: filepath.Join(dir, "flags.yaml")}
	if err := transport.WriteFileAtomic(d.flags, []byte(benchFlags("start")), 0o644); err != nil {
		b.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(b))
	d.sync = fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(b))
	// watchDebounce 5ms: the file source's default quiet time (100 ms) would be most of
	// what is measured; the goal is about publishing to the streams.
	cfg := fmt.Sprintf("flagSetId: bench\nschedule: \"@every 1h\"\nwatchDebounce: 5ms\nsources: [{name: git, type: file, path: %q}]\noutputs:\n  file: {path: %q}\nhttp: {listen: %q}\nflagdSync: {enabled: true, listen: %q}\nlog: {level: warn}\n",
		d.flags, filepath.Join(dir, "out.json"), listen, d.sync)
	cfgPath := filepath.Join(dir, "flagsync.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	d.cmd = exec.Command(bin, "run", "--config", cfgPath)
	d.cmd.Stdout, d.cmd.Stderr = &d.logs, &d.logs
	if err := d.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.cmd.Process.Kill(); _ = d.cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + listen + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("daemon not ready\n%s", d.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// benchStream is one client: its own connection and SyncFlags stream, reporting
// when each marker arrives.
type benchStream struct {
	conn *grpc.ClientConn
	mu   sync.Mutex
	seen map[string]time.Time // marker -> arrival
	got  chan struct{}        // a message arrived
}

// openStreams opens n clients, each on its own connection (as n applications
// would), and waits until every one holds the current snapshot.
func (d *benchDaemon) openStreams(ctx context.Context, n int) []*benchStream {
	d.b.Helper()
	out := make([]*benchStream, n)
	for i := range out {
		conn, err := grpc.NewClient(d.sync, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			d.b.Fatal(err)
		}
		s := &benchStream{conn: conn, seen: map[string]time.Time{}, got: make(chan struct{}, 1)}
		d.b.Cleanup(func() { conn.Close() })
		stream, err := syncv1.NewFlagSyncServiceClient(conn).SyncFlags(ctx, &syncv1.SyncFlagsRequest{ProviderId: "bench"})
		if err != nil {
			d.b.Fatal(err)
		}
		go func() {
			for {
				m, err := stream.Recv()
				if err != nil {
					return
				}
				now := time.Now()
				// The marker is the color variant's value: cheap to find, so the
				// clients' own parsing is not what is measured.
				_, rest, ok := strings.Cut(m.FlagConfiguration, `"variants":{"v":"`)
				marker, _, _ := strings.Cut(rest, `"`)
				s.mu.Lock()
				if ok {
					s.seen[marker] = now
				}
				s.mu.Unlock()
				select {
				case s.got <- struct{}{}:
				default:
				}
			}
		}()
		out[i] = s
	}
	for _, s := range out {
		d.waitFor(s, "start")
	}
	return out
}

func (d *benchDaemon) waitFor(s *benchStream, marker string) time.Time {
	d.b.Helper()
	timeout := time.After(30 * time.Second)
	for {
		s.mu.Lock()
		at, ok := s.seen[marker]
		s.mu.Unlock()
		if ok {
			return at
		}
		select {
		case <-s.got:
		case <-timeout:
			d.b.Fatalf("a stream never received %q\n%s", marker, d.logs.String())
		}
	}
}

// change writes a new color into the watched file and returns when the last stream
// received it, with each stream's latency from the write.
func (d *benchDaemon) change(streams []*benchStream, marker string) []time.Duration {
	d.b.Helper()
	start := time.Now()
	if err := transport.WriteFileAtomic(d.flags, []byte(benchFlags(marker)), 0o644); err != nil {
		d.b.Fatal(err)
	}
	lat := make([]time.Duration, len(streams))
	for i, s := range streams {
		lat[i] = d.waitFor(s, marker).Sub(start)
	}
	return lat
}

// BenchmarkSourceChangeToStreams: 100 clients hold SyncFlags streams on the daemon
// (each on its own connection); a write to the watched flag file must reach every
// one of them. Reports the latency from the write to each stream's receipt (p50, p99,
// max over every stream and change). Goal: p99 ≤ 100 ms.
func BenchmarkSourceChangeToStreams(b *testing.B) {
	d := startBenchDaemon(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streams := d.openStreams(ctx, 100)
	var lat []time.Duration
	i := 0
	b.ResetTimer()
	for b.Loop() {
		i++
		lat = append(lat, d.change(streams, fmt.Sprintf("m%d", i))...)
		time.Sleep(50 * time.Millisecond) // changes apart, as people make them
	}
	b.StopTimer()
	testsvc.ReportLatencies(b, "", lat)
}

// BenchmarkOpenStreamsRSS: 1,000 clients hold SyncFlags streams (each on its own
// connection), every one receives a change; reports the daemon's resident memory
// from /proc (current and peak) and the change's latency to all 1,000. Goal: RSS ≤ 128 MB.
func BenchmarkOpenStreamsRSS(b *testing.B) {
	d := startBenchDaemon(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streams := d.openStreams(ctx, 1000)
	var lat []time.Duration
	i := 0
	b.ResetTimer()
	for b.Loop() {
		i++
		lat = append(lat, d.change(streams, fmt.Sprintf("m%d", i))...)
	}
	b.StopTimer()
	hwm, rss := testsvc.ProcMemMB(b, d.cmd.Process.Pid)
	b.ReportMetric(rss, "daemon-VmRSS-MB")
	b.ReportMetric(hwm, "daemon-VmHWM-MB")
	testsvc.ReportLatencies(b, "", lat)
}
