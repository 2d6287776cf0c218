package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/provider"
	"github.com/flagsync/flagsync/transport"
)

// lockedBuffer collects a process's output from its copy goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// daemonProc is a running `flagsync run`.
type daemonProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	http string // base URL
	// token, when set, is sent with every request to the daemon (http.auth).
	token string
}

// e2eEnv is one scenario's directory, config and (optionally) Redis.
type e2eEnv struct {
	t      *testing.T
	bin    string
	dir    string
	flags  string
	out    string
	config string
	listen string
	redis  *testsvc.Redis
	rc     *redis.Client
}

func buildFlagsync(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "flagsync")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func flagDoc(keys ...string) string {
	var b strings.Builder
	b.WriteString("flags:\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s:\n    state: ENABLED\n    variants: {\"on\": true, \"off\": false}\n    defaultVariant: \"off\"\n", k)
	}
	return b.String()
}

func seq(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return out
}

func newE2E(t *testing.T, bin string, withRedis bool, extra string) *e2eEnv {
	t.Helper()
	e := &e2eEnv{t: t, bin: bin, dir: t.TempDir()}
	e.flags = filepath.Join(e.dir, "flags.yaml")
	e.out = filepath.Join(e.dir, "var", "flags.json")
	e.config = filepath.Join(e.dir, "flagsync.yaml")
	e.listen = fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t))
	e.writeFlags(flagDoc("a", "b", "c"))
	cfg := fmt.Sprintf("flagSetId: e2e\nwatchDebounce: 5ms\nschedule: \"@every 1h\"\nsources:\n  - {name: git, type: file, path: %q}\n  - {name: ops, type: env}\noutputs:\n  file: {path: %q}\n", e.flags, e.out)
	if withRedis {
		e.redis = testsvc.StartRedis(t)
		cfg += fmt.Sprintf("  redis: {url: %q}\n", "redis://"+e.redis.Addr+"/0")
		e.rc = redis.NewClient(&redis.Options{Addr: e.redis.Addr})
		t.Cleanup(func() { e.rc.Close() })
	}
	cfg += fmt.Sprintf("http: {listen: %q}\nlog: {level: debug}\n%s", e.listen, extra)
	e.writeConfig(cfg)
	return e
}

func (e *e2eEnv) writeFlags(s string) {
	e.t.Helper()
	if err := transport.WriteFileAtomic(e.flags, []byte(s), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *e2eEnv) writeConfig(s string) {
	e.t.Helper()
	if err := os.WriteFile(e.config, []byte(s), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *e2eEnv) start(env ...string) *daemonProc {
	e.t.Helper()
	p := &daemonProc{t: e.t, out: &lockedBuffer{}, done: make(chan struct{}), http: "http://" + e.listen}
	p.cmd = exec.Command(e.bin, "run", "--config", e.config)
	p.cmd.Dir = e.dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	e.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// exit waits for the process to end and returns its exit code.
func (p *daemonProc) exit(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		p.t.Fatalf("process still running after %s\n%s", timeout, p.out.String())
		return -1
	}
}

func (p *daemonProc) status() (map[string]any, bool) {
	req, err := http.NewRequest(http.MethodGet, p.http+"/api/v1/status", nil)
	if err != nil {
		return nil, false
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	var st map[string]any
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil, false
	}
	return st, true
}

func (p *daemonProc) waitReady() {
	p.t.Helper()
	eventually(p.t, "daemon ready\n"+p.out.String(), func() bool {
		resp, err := http.Get(p.http + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// loadFile reads and validates the published file; ok is false if it is missing or
// does not load cleanly.
func loadFile(path string) (*flagset.Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	set, probs, err := flagset.Load(data)
	if err != nil {
		return nil, err
	}
	if len(probs) > 0 {
		return nil, fmt.Errorf("problems: %v", probs)
	}
	return set, nil
}

// metricValue reads one sample from the daemon's /metrics.
func metricValue(t *testing.T, base, sample string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(resp.Body)
	for _, line := range strings.Split(body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

func runCLI(t *testing.T, bin, dir string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errOut.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errOut.String()
}

// TestDaemonE2E runs the built binary through the scenarios operators rely on.
func TestDaemonE2E(t *testing.T) {
	bin := buildFlagsync(t)

	t.Run("ChangeReachesFileRedisAndReaders", func(t *testing.T) {
		e := newE2E(t, bin, true, "")
		p := e.start("FLAGSYNC_FLAG_B=true")
		p.waitReady()
		// Apps read through the OpenFeature provider, from the file and from Redis.
		ctx := context.Background()
		api := isolated.NewAPI()
		t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
		fileClient := api.NewClient()
		if err := api.SetProviderAndWait(ctx, provider.NewFile(e.out)); err != nil {
			t.Fatal(err)
		}
		api2 := isolated.NewAPI()
		t.Cleanup(func() { _ = api2.Shutdown(context.Background()) })
		redisClient := api2.NewClient()
		if err := api2.SetProviderAndWait(ctx, provider.NewRedis(e.rc, "flagsync:e2e")); err != nil {
			t.Fatal(err)
		}
		noCtx := openfeature.EvaluationContext{}
		if v, err := fileClient.BooleanValue(ctx, "b", false, noCtx); err != nil || !v {
			t.Errorf("provider (file) b = %v %v, want true from FLAGSYNC_FLAG_B", v, err)
		}
		e.writeFlags(flagDoc("a", "b", "c", "new_dashboard"))
		for name, c := range map[string]*openfeature.Client{"file": fileClient, "redis": redisClient} {
			eventually(t, "provider ("+name+") sees the new flag", func() bool {
				d, err := c.BooleanValueDetails(ctx, "new_dashboard", true, noCtx)
				return err == nil && !d.Value && d.Variant == "off"
			})
		}
		eventually(t, "file has the new flag", func() bool {
			set, err := loadFile(e.out)
			return err == nil && set.Len() == 4
		})
		var fromRedis *flagset.Set
		eventually(t, "redis has the new flag", func() bool {
			data, err := transport.Read(ctx, e.rc, "flagsync:e2e")
			if err != nil {
				return false
			}
			set, _, err := flagset.Load(data)
			fromRedis = set
			return err == nil && set.Len() == 4
		})
		fileSet, _ := loadFile(e.out)
		if fromRedis.Revision() != fileSet.Revision() || fromRedis.Generation() != fileSet.Generation() {
			t.Errorf("redis %s/%d, file %s/%d", fromRedis.Revision(), fromRedis.Generation(), fileSet.Revision(), fileSet.Generation())
		}
		// A reader evaluates what the daemon published, env overlay included.
		if r := fileSet.Evaluate("b", flagset.TypeBoolean, false, nil); r.Value != true || r.Variant != "on" {
			t.Errorf("b = %+v, want on from FLAGSYNC_FLAG_B", r)
		}
		if r := fromRedis.Evaluate("new_dashboard", flagset.TypeBoolean, true, nil); r.Value != false || r.ErrorCode != flagset.CodeNone {
			t.Errorf("new_dashboard = %+v", r)
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := p.exit(10 * time.Second); code != 0 {
			t.Fatalf("SIGTERM exit %d\n%s", code, p.out.String())
		}
	})

	t.Run("RedisDownThenCaughtUp", func(t *testing.T) {
		e := newE2E(t, bin, true, "")
		p := e.start()
		p.waitReady()
		e.redis.Stop()
		e.writeFlags(flagDoc("a", "b", "c", "d"))
		eventually(t, "file published while redis is down", func() bool {
			set, err := loadFile(e.out)
			return err == nil && set.Len() == 4
		})
		eventually(t, "redis error in status", func() bool {
			st, ok := p.status()
			if !ok {
				return false
			}
			outs, _ := st["outputs"].([]any)
			if len(outs) != 2 {
				return false
			}
			r, _ := outs[1].(map[string]any)
			return r["lastError"] != nil && r["upToDate"] == false
		})
		e.redis.Start()
		fileSet, _ := loadFile(e.out)
		eventually(t, "redis caught up", func() bool {
			rev, _ := e.rc.Get(context.Background(), "flagsync:e2e:revision").Result()
			return rev == fileSet.Revision()
		})
	})

	t.Run("ConcurrentReadersNeverSeePartialFiles", func(t *testing.T) {
		e := newE2E(t, bin, false, "")
		e.writeFlags(flagDoc(seq("f", 50)...))
		p := e.start()
		p.waitReady()
		var stop atomic.Bool
		var reads, bad atomic.Int64
		var firstBad atomic.Value
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lastGen := int64(0)
				for !stop.Load() {
					set, err := loadFile(e.out)
					reads.Add(1)
					switch {
					case err != nil:
						bad.Add(1)
						firstBad.CompareAndSwap(nil, err.Error())
					case set.Generation() < lastGen:
						bad.Add(1)
						firstBad.CompareAndSwap(nil, fmt.Sprintf("generation went back from %d to %d", lastGen, set.Generation()))
					default:
						lastGen = set.Generation()
					}
					// Leave CPU to the daemon: the point is overlap, not load.
					time.Sleep(200 * time.Microsecond)
				}
			}()
		}
		// A writer keeps changing the source; the daemon publishes as fast as its
		// debounce allows until it has published 1000 times.
		const publishes = 1000
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				keys := seq("f", 50)
				keys[i%50] = fmt.Sprintf("changed%06d", i) // removes 1 of 50: under the guard
				tmp := e.flags + ".next"
				if err := os.WriteFile(tmp, []byte(flagDoc(keys...)), 0o644); err == nil {
					_ = os.Rename(tmp, e.flags)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		start := time.Now()
		got := 0.0
		for got < publishes+1 { // +1: the first publish happened before the loop
			if time.Since(start) > 10*time.Minute {
				t.Fatalf("only %v publishes after %s", got, time.Since(start))
			}
			time.Sleep(50 * time.Millisecond)
			got = metricValue(t, p.http, `flagsync_publishes_total{output="file"}`)
		}
		stop.Store(true)
		wg.Wait()
		if bad.Load() != 0 {
			t.Fatalf("%d of %d reads saw a missing, partial or older file; first: %v", bad.Load(), reads.Load(), firstBad.Load())
		}
		if reads.Load() < publishes {
			t.Errorf("only %d reads during %d publishes", reads.Load(), publishes)
		}
		t.Logf("%v publishes in %s, %d concurrent reads, 0 partial", got, time.Since(start).Round(time.Millisecond), reads.Load())
	})

	t.Run("Kill9WhilePublishingLeavesAValidFile", func(t *testing.T) {
		e := newE2E(t, bin, false, "")
		e.writeFlags(flagDoc(seq("k", 2000)...))
		p := e.start()
		p.waitReady()
		_ = p.cmd.Process.Kill()
		<-p.done
		lastGen := int64(0)
		for round := range 15 {
			p := e.start()
			stop := make(chan struct{})
			writerDone := make(chan struct{})
			go func() {
				defer close(writerDone)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					keys := seq("k", 2000)
					keys[i%2000] = fmt.Sprintf("r%dx%d", round, i)
					e.writeFlags(flagDoc(keys...))
					time.Sleep(3 * time.Millisecond)
				}
			}()
			time.Sleep(time.Duration(20+rand.IntN(200)) * time.Millisecond)
			_ = p.cmd.Process.Kill()
			<-p.done
			close(stop)
			<-writerDone
			set, err := loadFile(e.out)
			if err != nil {
				t.Fatalf("round %d: after kill -9 the file is not valid: %v", round, err)
			}
			if set.Generation() < lastGen {
				t.Fatalf("round %d: generation went back from %d to %d", round, lastGen, set.Generation())
			}
			lastGen = set.Generation()
		}
		// A restart removes the temp files killed writers left behind.
		p = e.start()
		p.waitReady()
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.exit(10 * time.Second); code != 0 {
			t.Fatalf("exit %d", code)
		}
		entries, _ := os.ReadDir(filepath.Dir(e.out))
		// The guard state file (guards.stateFile default) lives next to the output.
		entries = slices.DeleteFunc(entries, func(en os.DirEntry) bool { return en.Name() == filepath.Base(e.out)+".guards.json" })
		if len(entries) != 1 || entries[0].Name() != filepath.Base(e.out) {
			var names []string
			for _, en := range entries {
				names = append(names, en.Name())
			}
			t.Fatalf("output directory holds %v, want only %s", names, filepath.Base(e.out))
		}
	})

	t.Run("MalformedFlagAmongHundred", func(t *testing.T) {
		e := newE2E(t, bin, false, "")
		doc := flagDoc(seq("m", 100)...)
		doc = strings.Replace(doc, "  m0007:\n    state: ENABLED\n", "  m0007:\n    state: SOMETIMES\n", 1)
		e.writeFlags(doc)
		p := e.start()
		p.waitReady()
		set, err := loadFile(e.out)
		if err != nil || set.Len() != 99 {
			t.Fatalf("published %v flags (%v), want 99", set, err)
		}
		st, _ := p.status()
		errs, _ := json.Marshal(st["flagErrors"])
		if !strings.Contains(string(errs), "flags.m0007.state") {
			t.Fatalf("status flagErrors = %s", errs)
		}
	})

	t.Run("SighupReloads", func(t *testing.T) {
		e := newE2E(t, bin, false, "")
		p := e.start()
		p.waitReady()
		good, _ := os.ReadFile(e.config)
		e.writeConfig(string(good) + "surprise: true\n")
		_ = p.cmd.Process.Signal(syscall.SIGHUP)
		eventually(t, "reload refused in the log", func() bool { return strings.Contains(p.out.String(), "reload refused") })
		if !strings.Contains(p.out.String(), "surprise: unknown key") {
			t.Errorf("the refusal does not name the key:\n%s", p.out.String())
		}
		// The old configuration keeps running: changes are still published.
		e.writeFlags(flagDoc("a", "b", "c", "d"))
		eventually(t, "publish after a refused reload", func() bool {
			set, err := loadFile(e.out)
			return err == nil && set.Len() == 4
		})
		// A good new configuration takes effect: the output moves.
		second := filepath.Join(e.dir, "second.json")
		cfg := strings.Replace(string(good), fmt.Sprintf("file: {path: %q}", e.out), fmt.Sprintf("file: {path: %q}", second), 1)
		e.writeConfig(cfg)
		_ = p.cmd.Process.Signal(syscall.SIGHUP)
		eventually(t, "reloaded config publishes to the new path", func() bool {
			set, err := loadFile(second)
			return err == nil && set.Len() == 4
		})
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.exit(10 * time.Second); code != 0 {
			t.Fatalf("exit %d", code)
		}
	})

	t.Run("SighupKeepsFailingSourceFlags", func(t *testing.T) {
		e := newE2E(t, bin, false, "")
		team := filepath.Join(e.dir, "team.yaml")
		if err := os.WriteFile(team, []byte(flagDoc("t1", "t2")), 0o644); err != nil {
			t.Fatal(err)
		}
		good, _ := os.ReadFile(e.config)
		cfg := strings.Replace(string(good), "  - {name: ops, type: env}\n",
			fmt.Sprintf("  - {name: team, type: file, path: %q}\n  - {name: ops, type: env}\n", team), 1)
		e.writeConfig(cfg)
		p := e.start()
		p.waitReady()
		if set, err := loadFile(e.out); err != nil || set.Len() != 5 {
			t.Fatalf("first publish: %v %v, want a, b, c, t1, t2", set, err)
		}
		// The team source fails from now on; then the configuration is reloaded with
		// only the schedule changed (every second, so a change the new watcher might
		// miss while starting is still picked up).
		if err := os.Remove(team); err != nil {
			t.Fatal(err)
		}
		e.writeConfig(strings.Replace(cfg, `schedule: "@every 1h"`, `schedule: "@every 1s"`, 1))
		_ = p.cmd.Process.Signal(syscall.SIGHUP)
		eventually(t, "reloaded\n"+p.out.String(), func() bool { return strings.Contains(p.out.String(), "configuration reloaded") })
		if !strings.Contains(p.out.String(), "carried=3 sources=3") {
			t.Errorf("the reload did not carry the 3 unchanged sources over:\n%s", p.out.String())
		}
		// A cold start would refuse to publish without team; the reloaded daemon
		// publishes git's change with team's flags from before the reload.
		e.writeFlags(flagDoc("a", "b", "c", "d"))
		eventually(t, "git's change published with team's flags\n"+p.out.String(), func() bool {
			set, err := loadFile(e.out)
			return err == nil && slices.Equal(set.Keys(), []string{"a", "b", "c", "d", "t1", "t2"})
		})
		st, _ := p.status()
		srcs, _ := st["sources"].([]any)
		var teamSt map[string]any
		for _, s := range srcs {
			if m, _ := s.(map[string]any); m["name"] == "team" {
				teamSt = m
			}
		}
		if errMsg, _ := teamSt["lastError"].(string); !strings.Contains(errMsg, "team.yaml") || teamSt["definitions"] != 2.0 || teamSt["lastSuccess"] == nil {
			t.Errorf("status of team = %v, want its fetch error and its 2 inherited definitions", teamSt)
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.exit(10 * time.Second); code != 0 {
			t.Fatalf("exit %d", code)
		}
	})

	t.Run("SyncOnceGuardAndForce", func(t *testing.T) {
		e := newE2E(t, bin, false, "")
		e.writeFlags(flagDoc(seq("g", 10)...))
		if code, stdout, stderr := runCLI(t, bin, e.dir, "sync", "--once", "--config", e.config); code != 0 || !strings.HasPrefix(stdout, "published:") {
			t.Fatalf("first sync: %d %q %q", code, stdout, stderr)
		}
		if code, stdout, _ := runCLI(t, bin, e.dir, "sync", "--once", "--config", e.config); code != 0 || !strings.HasPrefix(stdout, "unchanged:") {
			t.Fatalf("second sync: %d %q", code, stdout)
		}
		e.writeFlags(flagDoc(seq("g", 2)...))
		code, _, stderr := runCLI(t, bin, e.dir, "sync", "--once", "--config", e.config)
		if code != 1 || !strings.Contains(stderr, "removes 8 of 10 flags") {
			t.Fatalf("guard: exit %d stderr %q", code, stderr)
		}
		if set, _ := loadFile(e.out); set.Len() != 10 {
			t.Fatal("the guarded snapshot was written")
		}
		if code, _, stderr := runCLI(t, bin, e.dir, "sync", "--once", "--force", "--config", e.config); code != 0 {
			t.Fatalf("--force: exit %d %q", code, stderr)
		}
		if set, _ := loadFile(e.out); set.Len() != 2 {
			t.Fatal("--force did not publish")
		}
		if code, _, stderr := runCLI(t, bin, e.dir, "sync", "--config", e.config); code != 2 || !strings.Contains(stderr, "--once is required") {
			t.Fatalf("without --once: %d %q", code, stderr)
		}
	})

	t.Run("SecretsNeverInLogsOrStatus", func(t *testing.T) {
		const password = "pw-e2e-Secret-777"
		const token = "tok-e2e-Secret-888"
		e := newE2E(t, bin, true, "")
		if err := e.rc.ConfigSet(context.Background(), "requirepass", password).Err(); err != nil {
			t.Fatal(err)
		}
		cfg, _ := os.ReadFile(e.config)
		e.writeConfig(strings.Replace(string(cfg), "redis://"+e.redis.Addr, "redis://:${REDIS_PASSWORD}@"+e.redis.Addr, 1))
		p := e.start("REDIS_PASSWORD="+password, `FLAGSYNC_FLAG_C={"defaultVariant": "`+token+`"}`,
			`FLAGSYNC_FLAG_BROKEN={"state": "`+token+`"}`)
		p.waitReady()
		e.redis.Stop() // the error paths log too
		e.writeFlags(flagDoc("a", "b", "c", "d"))
		var statusJSON []byte
		eventually(t, "redis error in status", func() bool {
			resp, err := http.Get(p.http + "/api/v1/status")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			buf := new(bytes.Buffer)
			_, _ = buf.ReadFrom(resp.Body)
			statusJSON = buf.Bytes()
			return bytes.Contains(statusJSON, []byte(`"lastError"`)) && bytes.Contains(statusJSON, []byte(`"flags": 4`))
		})
		metrics := ""
		if resp, err := http.Get(p.http + "/metrics"); err == nil {
			buf := new(bytes.Buffer)
			_, _ = buf.ReadFrom(resp.Body)
			resp.Body.Close()
			metrics = buf.String()
		}
		if !strings.Contains(metrics, "flagsync_output_errors_total") {
			t.Errorf("metrics miss the redis output errors:\n%s", metrics)
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.exit(10 * time.Second); code != 0 {
			t.Fatalf("exit %d", code)
		}
		logs := p.out.String()
		for _, secret := range []string{password, token} {
			for what, text := range map[string]string{"logs": logs, "status": string(statusJSON), "metrics": metrics} {
				if strings.Contains(text, secret) {
					t.Errorf("%s contain %q:\n%s", what, secret, text)
				}
			}
		}
		if !strings.Contains(string(statusJSON), "flags.broken") || !strings.Contains(string(statusJSON), "xxxxx@") {
			t.Errorf("status misses the problem or the redacted URL:\n%s", statusJSON)
		}
	})

	t.Run("ConfigErrors", func(t *testing.T) {
		dir := t.TempDir()
		code, _, stderr := runCLI(t, bin, dir, "run")
		if code != 2 || !strings.Contains(stderr, "flagsync.yaml") || !strings.Contains(stderr, "cp examples/quickstart/flagsync.yaml .") || !strings.Contains(stderr, "--config") {
			t.Fatalf("no config: exit %d\n%s", code, stderr)
		}
		bad := filepath.Join(dir, "bad.yaml")
		_ = os.WriteFile(bad, []byte("flagSetId: x\nsources:\n  - {name: git, type: file}\noutputs: {file: {path: out.json}}\n"), 0o644)
		code, _, stderr = runCLI(t, bin, dir, "run", "--config", bad)
		if code != 2 || !strings.Contains(stderr, "sources[0].path: required") {
			t.Fatalf("bad config: exit %d\n%s", code, stderr)
		}
		code, _, stderr = runCLI(t, bin, dir, "sync", "--once", "--config", filepath.Join(dir, "missing.yaml"))
		if code != 2 || !strings.Contains(stderr, "missing.yaml") {
			t.Fatalf("missing --config: exit %d\n%s", code, stderr)
		}
	})
}
