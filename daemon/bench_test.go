package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/transport"
)

// genFlags returns a JSON document with n realistic flags: booleans and strings,
// every fifth with targeting, all with owner/description metadata. marker is put
// into one flag's description so each call can differ.
func genFlags(n int, marker string) []byte {
	flags := make(map[string]any, n)
	for i := range n {
		f := map[string]any{
			"state":          "ENABLED",
			"variants":       map[string]any{"on": true, "off": false},
			"defaultVariant": "off",
			"metadata":       map[string]any{"owner": fmt.Sprintf("team-%d", i%17), "description": fmt.Sprintf("flag number %d", i)},
		}
		if i%3 == 1 {
			f["variants"] = map[string]any{"blue": "#1f6feb", "green": "#2da44e", "red": "#cf222e"}
			f["defaultVariant"] = "blue"
		}
		if i%5 == 0 {
			f["targeting"] = map[string]any{"if": []any{
				map[string]any{"ends_with": []any{map[string]any{"var": "email"}, "@example.com"}},
				f["defaultVariant"], nil}}
		}
		if i == 0 {
			f["metadata"].(map[string]any)["description"] = marker
		}
		flags[fmt.Sprintf("flag_%05d", i)] = f
	}
	b, _ := json.Marshal(map[string]any{"flags": flags})
	return b
}

// benchDaemon is a daemon with a JSON file source and file + Redis outputs.
func benchDaemon(b *testing.B, n int, extra string) (d *Daemon, src, out string, rc *redis.Client) {
	b.Helper()
	dir := b.TempDir()
	src = filepath.Join(dir, "flags.json")
	out = filepath.Join(dir, "out.json")
	if err := transport.WriteFileAtomic(src, genFlags(n, "start"), 0o644); err != nil {
		b.Fatal(err)
	}
	r := testsvc.StartRedis(b)
	cfg, err := ParseConfig([]byte(fmt.Sprintf(`flagSetId: bench
sources: [{name: git, type: file, path: %q}]
outputs:
  file: {path: %q}
  redis: {url: "redis://%s/0"}
log: {level: error}
%s`, src, out, r.Addr, extra)), nil)
	if err != nil {
		b.Fatal(err)
	}
	d, err = New(cfg, Options{Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(d.Close)
	rc = redis.NewClient(&redis.Options{Addr: r.Addr})
	b.Cleanup(func() { rc.Close() })
	return d, src, out, rc
}

// BenchmarkSync measures one full sync that publishes: read and parse the source,
// merge, validate, canonical encoding, atomic file write and Redis publish.
// Goal: 10k flags ≤ 200 ms.
func BenchmarkSync(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			d, src, _, _ := benchDaemon(b, n, "")
			ctx := context.Background()
			if _, err := d.Sync(ctx, false); err != nil {
				b.Fatal(err)
			}
			docs := [][]byte{genFlags(n, "a"), genFlags(n, "b")}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				if err := os.WriteFile(src, docs[i%2], 0o644); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				rep, err := d.Sync(ctx, false)
				if err != nil || rep.Result != "published" {
					b.Fatalf("sync: %+v %v", rep, err)
				}
			}
		})
	}
}

// BenchmarkWatchLatency measures, over 100 changes of a 100-flag source, the time
// from the source file being replaced to the new snapshot being visible both in
// the output file and in Redis, with the default 100 ms debounce. Goal: p99 ≤ 150 ms.
func BenchmarkWatchLatency(b *testing.B) {
	d, src, out, rc := benchDaemon(b, 100, "schedule: \"@every 1h\"\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for !d.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		for i := range 100 {
			marker := fmt.Sprintf("change-%d-%d", len(lat), i)
			doc := genFlags(100, marker)
			tmp := src + ".next"
			if err := os.WriteFile(tmp, doc, 0o644); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := os.Rename(tmp, src); err != nil {
				b.Fatal(err)
			}
			inFile, inRedis := false, false
			for !inFile || !inRedis {
				if time.Since(start) > 10*time.Second {
					b.Fatalf("change %d not visible after 10s (file %v redis %v)", i, inFile, inRedis)
				}
				time.Sleep(500 * time.Microsecond)
				if !inFile {
					data, _ := os.ReadFile(out)
					inFile = bytes.Contains(data, []byte(marker))
				}
				if !inRedis {
					data, _ := transport.Read(ctx, rc, "flagsync:bench")
					inRedis = bytes.Contains(data, []byte(marker))
				}
			}
			lat = append(lat, time.Since(start))
		}
	}
	b.StopTimer()
	testsvc.ReportLatencies(b, "", lat)
	b.ReportMetric(float64(len(lat)), "changes")
}

// BenchmarkDaemonRSS runs the built flagsync binary serving 10k flags (file + Redis
// outputs) over OFREP, makes it publish a few times, evaluating after every publish
// (single flags and a bulk evaluation of all 10k, so the compiled set and every
// flag's result metadata are held), and reports its peak (VmHWM) and current (VmRSS)
// resident memory from /proc. Goal: ≤ 64 MB.
func BenchmarkDaemonRSS(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "flagsync")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/flagsync/flagsync/cmd/flagsync").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	src := filepath.Join(dir, "flags.json")
	out := filepath.Join(dir, "out.json")
	if err := os.WriteFile(src, genFlags(10000, "start"), 0o644); err != nil {
		b.Fatal(err)
	}
	r := testsvc.StartRedis(b)
	listen := fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(b))
	cfgPath := filepath.Join(dir, "flagsync.yaml")
	cfg := fmt.Sprintf("flagSetId: rss\nsources: [{name: git, type: file, path: %q}]\noutputs:\n  file: {path: %q}\n  redis: {url: \"redis://%s/0\"}\nhttp: {listen: %q, ofrep: {apiKeys: [bench-key]}}\nlog: {level: warn}\n", src, out, r.Addr, listen)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	status := func() (map[string]any, bool) {
		resp, err := http.Get("http://" + listen + "/api/v1/status")
		if err != nil {
			return nil, false
		}
		defer resp.Body.Close()
		var st map[string]any
		return st, json.NewDecoder(resp.Body).Decode(&st) == nil
	}
	waitGen := func(after float64) float64 {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if st, ok := status(); ok && st["ready"] == true {
				if g, _ := st["generation"].(float64); g > after && st["flags"] == float64(10000) {
					return g
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		b.Fatalf("no publish of 10k flags\n%s", logs.String())
		return 0
	}
	// evaluate asks OFREP for a few flags and then for all of them, and checks the
	// answers come from the snapshot of generation gen.
	evaluate := func(gen float64) {
		body := `{"context":{"targetingKey":"user-42","email":"vip@example.com"}}`
		post := func(path string) map[string]any {
			req, _ := http.NewRequest("POST", "http://"+listen+"/ofrep/v1/evaluate/flags"+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-API-Key", "bench-key")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			if resp.StatusCode == http.StatusServiceUnavailable {
				return out // no set served yet: the first publish is still being written
			}
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("POST %s: %d %v", path, resp.StatusCode, err)
			}
			return out
		}
		// The status shows a new generation as soon as it is built; OFREP serves it
		// once its publish is done.
		deadline := time.Now().Add(10 * time.Second)
		for _, key := range []string{"flag_00000", "flag_00001", "flag_05000", "flag_09999"} {
			for {
				res := post("/" + key)
				if md, _ := res["metadata"].(map[string]any); md != nil && md["flagsync.generation"] == gen {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("%s: not evaluated on generation %v: %v", key, gen, res)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		if flags, _ := post("")["flags"].([]any); len(flags) != 10000 {
			b.Fatalf("bulk evaluation returned %d flags", len(flags))
		}
	}
	gen := waitGen(0)
	evaluate(gen)
	b.ResetTimer()
	for b.Loop() {
		for i := range 5 {
			if err := transport.WriteFileAtomic(src, genFlags(10000, fmt.Sprintf("m%d", i)), 0o644); err != nil {
				b.Fatal(err)
			}
			gen = waitGen(gen)
			evaluate(gen)
		}
	}
	b.StopTimer()
	hwm, rss := testsvc.ProcMemMB(b, cmd.Process.Pid)
	b.ReportMetric(hwm, "VmHWM-MB")
	b.ReportMetric(rss, "VmRSS-MB")
}
