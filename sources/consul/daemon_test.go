package consul_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/flagsync/flagsync/daemon"
	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/sources/consul"
)

// runDaemon runs a daemon with one Consul source (prefix flags/) and a file output
// until the test ends; it returns the output path. A negative debounce leaves
// watchDebounce out of the config (the consul type's default, 0).
func runDaemon(t testing.TB, c *testsvc.Consul, debounce time.Duration) string {
	t.Helper()
	return runDaemonLogging(t, c, debounce, slog.NewTextHandler(io.Discard, nil))
}

// runDaemonLogging is runDaemon with the daemon's log going to h.
func runDaemonLogging(t testing.TB, c *testsvc.Consul, debounce time.Duration, h slog.Handler) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "flags.json")
	yml := fmt.Sprintf(`flagSetId: consul-e2e
sources:
  - name: kv
    type: consul
    address: %s
    prefix: flags/
    waitTime: 1m
schedule: "@every 1h"
outputs:
  file:
    path: %s
`, c.Addr, out)
	if debounce >= 0 {
		yml += fmt.Sprintf("watchDebounce: %s\n", debounce)
	}
	cfg, err := daemon.ParseConfig([]byte(yml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	d, err := daemon.New(cfg, daemon.Options{Logger: slog.New(h)})
	if err != nil {
		t.Fatalf("daemon: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = d.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait(); d.Close() })
	return out
}

func kvClient(t testing.TB, c *testsvc.Consul) *api.KV {
	t.Helper()
	client, err := api.NewClient(&api.Config{Address: c.Addr})
	if err != nil {
		t.Fatal(err)
	}
	return client.KV()
}

// waitFileContains polls the output file until it contains want.
func waitFileContains(path string, want []byte, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, want) {
			return true
		}
		time.Sleep(500 * time.Microsecond)
	}
	return false
}

// TestDaemonPublishesConsulChanges runs the consul source type through the daemon:
// a `consul kv put` shows up in the published file without waiting for the schedule.
func TestDaemonPublishesConsulChanges(t *testing.T) {
	c := testsvc.StartConsul(t)
	kv := kvClient(t, c)
	for _, k := range []string{"a", "b", "c"} {
		if _, err := kv.Put(&api.KVPair{Key: "flags/" + k, Value: []byte("true")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.Put(&api.KVPair{Key: "flags/new_dashboard", Value: []byte(`{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off"}`)}, nil); err != nil {
		t.Fatal(err)
	}
	out := runDaemon(t, c, 20*time.Millisecond)
	if !waitFileContains(out, []byte(`"consul:flags/new_dashboard@`), 10*time.Second) {
		t.Fatalf("first snapshot never had new_dashboard from consul")
	}
	if _, err := kv.Put(&api.KVPair{Key: "flags/new_dashboard", Value: []byte(`{"defaultVariant":"on"}`)}, nil); err != nil {
		t.Fatal(err)
	}
	// The schedule is hourly: only the watch can make this appear.
	if !waitFileContains(out, []byte(`"defaultVariant":"on"`), 10*time.Second) {
		b, _ := os.ReadFile(out)
		t.Fatalf("the put was not published via the watch; file:\n%s", b)
	}
}

// TestDaemonNeverPublishesBadValues: broken YAML and a YAML bomb written to Consul
// never reach the published file as string flags; good keys keep being published.
func TestDaemonNeverPublishesBadValues(t *testing.T) {
	c := testsvc.StartConsul(t)
	kv := kvClient(t, c)
	put := func(k, v string) {
		t.Helper()
		if _, err := kv.Put(&api.KVPair{Key: "flags/" + k, Value: []byte(v)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	put("color", "green")
	out := runDaemon(t, c, -1)
	if !waitFileContains(out, []byte(`"green"`), 10*time.Second) {
		t.Fatal("no first snapshot")
	}
	put("brace", "{broken: [")
	put("plain", "broken: [")
	put("bomb", "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n")
	put("color", "blue") // written last: once it is published, the bad values were read
	if !waitFileContains(out, []byte(`"blue"`), 10*time.Second) {
		t.Fatal("blue never published")
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"broken", "&a", `"brace"`, `"plain"`, `"bomb"`} {
		if bytes.Contains(data, []byte(bad)) {
			t.Errorf("the published file holds %s:\n%s", bad, data)
		}
	}
}

// publishes records the snapshots the daemon publishes (its "published" log records).
type publishes struct {
	mu        sync.Mutex
	revisions []string
}

func (p *publishes) Enabled(context.Context, slog.Level) bool { return true }
func (p *publishes) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *publishes) WithGroup(string) slog.Handler            { return p }
func (p *publishes) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "published" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "revision" {
				p.mu.Lock()
				p.revisions = append(p.revisions, a.Value.String())
				p.mu.Unlock()
			}
			return true
		})
	}
	return nil
}

func (p *publishes) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.revisions)
}

// TestDaemonCoalescesConsulBursts: with a consul source's watchDebounce (here 3s), a
// change after a quiet time is published without waiting for the window (it shows
// up long before the window could end), and the changes inside the window that
// follows — spread over a second, so each would be published on its own without
// coalescing — become one publish of the last value.
func TestDaemonCoalescesConsulBursts(t *testing.T) {
	const window = 3 * time.Second
	c := testsvc.StartConsul(t)
	kv := kvClient(t, c)
	put := func(v string) {
		t.Helper()
		if _, err := kv.Put(&api.KVPair{Key: "flags/x", Value: []byte(v)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	put("v0")
	pubs := &publishes{}
	out := runDaemonLogging(t, c, window, pubs)
	if !waitFileContains(out, []byte(`"v0"`), 10*time.Second) {
		t.Fatal("no first snapshot")
	}
	time.Sleep(window + 500*time.Millisecond) // let the window of the watch's first sync pass
	base := pubs.count()
	put("v1")
	// Leading edge: not held back by the window (a trailing window would take 3s).
	if !waitFileContains(out, []byte(`"v1"`), window/2) {
		t.Fatal("v1 was not published before half the window had passed")
	}
	for i := 2; i <= 11; i++ {
		time.Sleep(100 * time.Millisecond)
		put(fmt.Sprintf("v%d", i))
	}
	if !waitFileContains(out, []byte(`"v11"`), 10*time.Second) {
		t.Fatal("v11 never published")
	}
	// The file is written before the publish is logged: wait for the log too.
	for deadline := time.Now().Add(5 * time.Second); pubs.count() < base+2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	pubs.mu.Lock()
	defer pubs.mu.Unlock()
	if got := len(pubs.revisions) - base; got != 2 {
		t.Fatalf("%d publishes for v1..v11, want 2 (v1 at once, then the burst once); all: %v (base %d)", got, pubs.revisions, base)
	}
}

// BenchmarkConsulChangeLatency measures, over b.N changes (use -benchtime=100x), the
// time from just before a KV put to (1) the source's Watch signalling a change, (2)
// the source's Fetch returning the new value, and (3) the daemon having published it
// to its output file, with the default configuration (the consul type's 100ms
// coalescing window, which a lone change does not wait for) and with watchDebounce 0
// (no coalescing). Goal with the default: daemon p50 ≤ 30 ms, p99 ≤ 200 ms.
func BenchmarkConsulChangeLatency(b *testing.B) {
	b.Run("default", func(b *testing.B) { benchChangeLatency(b, -1) })
	b.Run("watchDebounce=0", func(b *testing.B) { benchChangeLatency(b, 0) })
}

func benchChangeLatency(b *testing.B, debounce time.Duration) {
	c := testsvc.StartConsul(b)
	kv := kvClient(b, c)
	if _, err := kv.Put(&api.KVPair{Key: "flags/bench", Value: []byte("v0")}, nil); err != nil {
		b.Fatal(err)
	}
	src, err := consul.New("bench", consul.Config{Address: c.Addr, Prefix: "flags/"}, consul.Options{})
	if err != nil {
		b.Fatal(err)
	}
	changed := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = src.Watch(ctx, func() {
			select {
			case changed <- struct{}{}:
			default:
			}
		})
	})
	defer func() { cancel(); wg.Wait() }()
	out := runDaemon(b, c, debounce)
	if !waitFileContains(out, []byte(`"v0"`), 10*time.Second) {
		b.Fatal("daemon never published the first snapshot")
	}
	time.Sleep(200 * time.Millisecond) // let both watches arm

	var watchLat, fetchLat, daemonLat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		val := fmt.Sprintf("v%d", i+1)
		// Keep the minimum watch interval (50ms) and the coalescing window (the consul
		// type's 100ms watchDebounce) out of the figures: each change is a lone one.
		time.Sleep(daemon.DefaultWatchDebounce + 20*time.Millisecond)
		select {
		case <-changed:
		default:
		}
		start := time.Now()
		if _, err := kv.Put(&api.KVPair{Key: "flags/bench", Value: []byte(val)}, nil); err != nil {
			b.Fatal(err)
		}
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			b.Fatalf("change %d: no watch signal", i)
		}
		watchLat = append(watchLat, time.Since(start))
		res, err := src.Fetch(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if got := res.Overlays["bench"].Value; got != val {
			b.Fatalf("change %d: Fetch after the signal returned %v, want %s", i, got, val)
		}
		fetchLat = append(fetchLat, time.Since(start))
		if !waitFileContains(out, []byte(`"`+val+`"`), 10*time.Second) {
			b.Fatalf("change %d: daemon never published %s", i, val)
		}
		daemonLat = append(daemonLat, time.Since(start))
	}
	b.StopTimer()
	testsvc.ReportLatencies(b, "watch-", watchLat)
	testsvc.ReportLatencies(b, "fetch-", fetchLat)
	testsvc.ReportLatencies(b, "daemon-", daemonLat)
}
