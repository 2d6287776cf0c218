package consul_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/flagsync/flagsync/daemon"
	"github.com/flagsync/flagsync/internal/testsvc"
)

// consulTemplateBinary is $FLAGSYNC_CONSUL_TEMPLATE_BIN or consul-template on PATH
// (scripts/ensure-consul-template.sh builds it into ~/.cache/flagsync/bin).
func consulTemplateBinary(b *testing.B) string {
	if p := os.Getenv("FLAGSYNC_CONSUL_TEMPLATE_BIN"); p != "" {
		return p
	}
	p, err := exec.LookPath("consul-template")
	if err != nil {
		b.Fatalf("consul-template not found: run scripts/ensure-consul-template.sh (%v)", err)
	}
	return p
}

// BenchmarkConsulVsConsulTemplate runs the flagsync binary (`flagsync run`, the
// consul source's default configuration, file output) and consul-template (rendering
// the same prefix with `ls` into a file), each its own process, against one Consul
// dev agent, and measures for each KV put the time until each file holds the new
// value; both files are polled by the same loop. Use -benchtime=200x. Goal: the
// daemon's p50 and p99 at most consul-template's.
func BenchmarkConsulVsConsulTemplate(b *testing.B) {
	bin := consulTemplateBinary(b)
	c := testsvc.StartConsul(b)
	kv := kvClient(b, c)
	for _, k := range []string{"a", "b", "c"} {
		if _, err := kv.Put(&api.KVPair{Key: "flags/" + k, Value: []byte("true")}, nil); err != nil {
			b.Fatal(err)
		}
	}
	value := func(i int) string { return fmt.Sprintf("v%06d", i) }
	if _, err := kv.Put(&api.KVPair{Key: "flags/bench", Value: []byte(value(0))}, nil); err != nil {
		b.Fatal(err)
	}

	dir := b.TempDir()
	tpl, ctOut := filepath.Join(dir, "flags.ctmpl"), filepath.Join(dir, "ct.txt")
	if err := os.WriteFile(tpl, []byte("{{ range ls \"flags/\" }}{{ .Key }}={{ .Value }};\n{{ end }}"), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ct := exec.CommandContext(ctx, bin, "-consul-addr", c.Addr, "-template", tpl+":"+ctOut, "-log-level", "err")
	ct.Stderr = os.Stderr
	if err := ct.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); _ = ct.Wait() })
	daemonOut := filepath.Join(dir, "flags.json")
	cfg := filepath.Join(dir, "flagsync.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `flagSetId: bench
sources:
  - {name: kv, type: consul, address: %q, prefix: flags/}
schedule: "@every 1h"
http: {listen: "127.0.0.1:0"}
outputs:
  file: {path: %q}
`, c.Addr, daemonOut), 0o644); err != nil {
		b.Fatal(err)
	}
	flagsync := filepath.Join(dir, "flagsync")
	if out, err := exec.Command("go", "build", "-o", flagsync, "github.com/flagsync/flagsync/cmd/flagsync").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	d := exec.CommandContext(ctx, flagsync, "run", "-config", cfg)
	d.Stderr = io.Discard
	if err := d.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); _ = d.Wait() })

	ctWant := func(i int) []byte { return []byte("=" + value(i) + ";") }
	dWant := func(i int) []byte { return []byte(`"` + value(i) + `"`) }
	if !waitFileContains(daemonOut, dWant(0), 10*time.Second) || !waitFileContains(ctOut, ctWant(0), 10*time.Second) {
		b.Fatal("daemon or consul-template never wrote the first value")
	}
	time.Sleep(200 * time.Millisecond) // let both watches arm

	var dLat, ctLat []time.Duration
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		// Lone changes: past the daemon's 100ms coalescing window and Consul
		// watch's 50ms minimum interval.
		time.Sleep(daemon.DefaultWatchDebounce + 20*time.Millisecond)
		start := time.Now()
		if _, err := kv.Put(&api.KVPair{Key: "flags/bench", Value: []byte(value(i))}, nil); err != nil {
			b.Fatal(err)
		}
		var dAt, ctAt time.Duration
		for deadline := start.Add(10 * time.Second); dAt == 0 || ctAt == 0; {
			now := time.Now()
			if now.After(deadline) {
				b.Fatalf("change %d: daemon %v, consul-template %v (0 = not seen)", i, dAt, ctAt)
			}
			if dAt == 0 && fileContains(daemonOut, dWant(i)) {
				dAt = time.Since(start)
			}
			if ctAt == 0 && fileContains(ctOut, ctWant(i)) {
				ctAt = time.Since(start)
			}
			time.Sleep(100 * time.Microsecond)
		}
		dLat, ctLat = append(dLat, dAt), append(ctLat, ctAt)
	}
	b.StopTimer()
	testsvc.ReportLatencies(b, "daemon-", dLat)
	testsvc.ReportLatencies(b, "consul-template-", ctLat)
	b.ReportMetric(0, "ns/op")
}

func fileContains(path string, want []byte) bool {
	data, err := os.ReadFile(path)
	return err == nil && bytes.Contains(data, want)
}
