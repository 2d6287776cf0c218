package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/sources"
	"github.com/flagsync/flagsync/transport"
)

// BenchmarkSlowStore measures how long a change in one source takes to reach the
// file output while another store does not answer (goal: p99 <= 200ms):
//
//   - consul-frozen: a real Consul agent stopped with SIGSTOP; a file change.
//   - ssm-hung: an SSM endpoint that accepts connections and never answers (the
//     SSM source had one good result before, as after a reload); a Consul change.
//
// The schedule runs every second, so scheduled fetches keep hitting the stuck store
// during the measurement. Run: go test -run '^$' -bench SlowStore -benchtime 40x ./daemon/
func BenchmarkSlowStore(b *testing.B) {
	b.Run("consul-frozen", func(b *testing.B) {
		c := testsvc.StartConsul(b)
		env := newSlowEnv(b, fmt.Sprintf("  - {name: kv, type: consul, address: %q, prefix: flags/, timeout: 5s}\n", c.Addr))
		putKV(b, c, "k", "true")
		d, stop := env.run(b, nil)
		defer stop()
		env.waitFor(b, `"k"`)
		if err := c.Signal(syscall.SIGSTOP); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = c.Signal(syscall.SIGCONT) }()
		time.Sleep(1500 * time.Millisecond) // a scheduled fetch of the frozen agent is in flight
		_ = d
		env.measure(b, func(i int) string {
			env.writeFlags(i)
			return fmt.Sprintf(`"v%d"`, i)
		})
	})
	b.Run("ssm-hung", func(b *testing.B) {
		c := testsvc.StartConsul(b)
		hung := hungListener(b)
		env := newSlowEnv(b, fmt.Sprintf("  - {name: kv, type: consul, address: %q, prefix: flags/, timeout: 5s}\n", c.Addr)+
			fmt.Sprintf("  - {name: params, type: ssm, path: /flags/, region: us-east-1, endpoint: %q, timeout: 5s, maxAttempts: 1}\n", "http://"+hung))
		b.Setenv("AWS_ACCESS_KEY_ID", "bench")
		b.Setenv("AWS_SECRET_ACCESS_KEY", "bench")
		putKV(b, c, "k", "true")
		d, stop := env.run(b, func(d *Daemon) {
			// The SSM source answered once before it hung (what a reload carries over).
			for _, s := range d.srcs {
				if s.cfg.Name == "params" {
					s.last = &sources.Result{Definitions: map[string]*flagset.Flag{}, Overlays: map[string]sources.Overlay{
						"from_ssm": {Value: true, HasValue: true, Origin: sources.Origin{Scheme: "ssm", Location: "/flags/from_ssm", Version: 1}}}}
					s.lastSuccess = time.Now()
				}
			}
		})
		defer stop()
		env.waitFor(b, `"from_ssm"`)
		time.Sleep(1500 * time.Millisecond) // a scheduled fetch of the hung SSM is in flight
		_ = d
		env.measure(b, func(i int) string {
			putKV(b, c, "color", fmt.Sprintf("c%d", i))
			return fmt.Sprintf(`"c%d"`, i)
		})
	})
}

type slowEnv struct {
	dir, flags, out, cfg string
}

func newSlowEnv(b *testing.B, extraSources string) *slowEnv {
	dir := b.TempDir()
	e := &slowEnv{dir: dir, flags: filepath.Join(dir, "flags.yaml"), out: filepath.Join(dir, "out", "flags.json")}
	e.writeFlags(-1)
	e.cfg = fmt.Sprintf("flagSetId: bench\nschedule: \"@every 1s\"\nsources:\n  - {name: git, type: file, path: %q, watchDebounce: 0s}\n%soutputs:\n  file: {path: %q}\n",
		e.flags, extraSources, e.out)
	return e
}

// writeFlags writes the file source with flag f's value v<i>.
func (e *slowEnv) writeFlags(i int) {
	doc := fmt.Sprintf("flags:\n  f:\n    state: ENABLED\n    variants: {\"v%d\": \"v%d\"}\n    defaultVariant: \"v%d\"\n", i, i, i)
	if err := transport.WriteFileAtomic(e.flags, []byte(doc), 0o644); err != nil {
		panic(err)
	}
}

func (e *slowEnv) run(b *testing.B, prepare func(*Daemon)) (*Daemon, func()) {
	cfg, err := ParseConfig([]byte(e.cfg), os.LookupEnv)
	if err != nil {
		b.Fatalf("config: %v\n%s", err, e.cfg)
	}
	d, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if prepare != nil {
		prepare(d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = d.Run(ctx) }()
	return d, func() { cancel(); wg.Wait(); d.Close() }
}

// waitFor waits until the output contains marker.
func (e *slowEnv) waitFor(b *testing.B, marker string) time.Time {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if data, err := os.ReadFile(e.out); err == nil && bytes.Contains(data, []byte(marker)) {
			return time.Now()
		}
		if time.Now().After(deadline) {
			b.Fatalf("output never contained %s", marker)
		}
		time.Sleep(500 * time.Microsecond)
	}
}

// measure makes b.N changes (change returns the marker that shows it published) and
// reports the latency percentiles.
func (e *slowEnv) measure(b *testing.B, change func(i int) string) {
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		marker := change(i)
		lat = append(lat, e.waitFor(b, marker).Sub(start))
	}
	b.StopTimer()
	testsvc.ReportLatencies(b, "", lat)
}

// hungListener accepts TCP connections and never answers: an honest hung store.
func hungListener(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

func putKV(b *testing.B, c *testsvc.Consul, key, value string) {
	req, err := http.NewRequest("PUT", c.URL()+"/v1/kv/flags/"+key, strings.NewReader(value))
	if err != nil {
		b.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
}
