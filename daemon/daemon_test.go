package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/sources"
	"github.com/flagsync/flagsync/transport"
)

// fakeSource is a source the test controls, registered as type "fake".
type fakeSource struct {
	name string
	mu   sync.Mutex
	res  *sources.Result
	err  error
}

func (f *fakeSource) Name() string { return f.name }
func (f *fakeSource) Fetch(context.Context) (*sources.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.res, f.err
}
func (f *fakeSource) set(res *sources.Result, err error) {
	f.mu.Lock()
	f.res, f.err = res, err
	f.mu.Unlock()
}

var (
	fakesMu sync.Mutex
	fakes   = map[string]*fakeSource{} // by source name; tests use unique names
)

func init() {
	sourceTypes["fake"] = func(name string, node *yaml.Node, deps SourceDeps) (sources.Source, error) {
		fakesMu.Lock()
		defer fakesMu.Unlock()
		f, ok := fakes[name]
		if !ok {
			return nil, fmt.Errorf("no fake source %q registered", name)
		}
		return f, nil
	}
}

func newFake(t *testing.T, res *sources.Result, err error) *fakeSource {
	f := &fakeSource{name: "fake-" + t.Name(), res: res, err: err}
	fakesMu.Lock()
	fakes[f.name] = f
	fakesMu.Unlock()
	return f
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	t        *testing.T
	dir      string
	flags    string // the file source
	out      string // the file output
	redis    *testsvc.Redis
	redisURL string
	rc       *redis.Client
	d        *Daemon
	logs     *syncBuffer
	metrics  *Metrics
}

type hopts struct {
	redis    bool
	extraSrc string // appended to sources:
	extra    string // appended to the config
	environ  []string
	now      func() time.Time
}

func flagYAML(keys ...string) string {
	var b strings.Builder
	b.WriteString("flags:\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s:\n    state: ENABLED\n    variants: {\"on\": true, \"off\": false}\n    defaultVariant: \"off\"\n", k)
	}
	return b.String()
}

func keys(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

// bareHarness is a harness without a daemon yet: a temp dir holding flags.yaml with
// the given flags, and the output path out (relative to that dir).
func bareHarness(t *testing.T, out string, flags ...string) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), logs: &syncBuffer{}, metrics: NewMetrics()}
	h.flags = filepath.Join(h.dir, "flags.yaml")
	h.out = filepath.Join(h.dir, out)
	h.writeFlags(flagYAML(flags...))
	return h
}

func newHarness(t *testing.T, o hopts) *harness {
	t.Helper()
	h := bareHarness(t, filepath.Join("out", "flags.json"), "a", "b", "c")
	cfg := fmt.Sprintf("flagSetId: test\nwatchDebounce: 20ms\nsources:\n  - {name: git, type: file, path: %q}\n%s", h.flags, o.extraSrc)
	cfg += fmt.Sprintf("outputs:\n  file: {path: %q}\n", h.out)
	if o.redis {
		h.redis = testsvc.StartRedis(t)
		h.redisURL = h.redis.URL()
		if h.redisURL == "" {
			h.redisURL = "redis://" + h.redis.Addr
		}
		cfg += fmt.Sprintf("  redis: {url: %q}\n", h.redisURL)
		h.rc = redis.NewClient(&redis.Options{Addr: h.redis.Addr})
		t.Cleanup(func() { h.rc.Close() })
	}
	cfg += o.extra
	h.d = h.build(cfg, o)
	return h
}

func (h *harness) build(cfgText string, o hopts) *Daemon {
	h.t.Helper()
	cfg, err := ParseConfig([]byte(cfgText), lookupFrom(map[string]string{"REDIS_PASSWORD": "pw-Secret-4242", "READ_TOKEN": testReadToken, "ADMIN_TOKEN": testAdminToken}))
	if err != nil {
		h.t.Fatalf("config: %v\n%s", err, cfgText)
	}
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	environ := func() []string { return o.environ }
	d, err := New(cfg, Options{Logger: logger, Metrics: h.metrics, Environ: environ, Now: o.now})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(d.Close)
	return d
}

func (h *harness) writeFlags(content string) {
	h.t.Helper()
	if err := transport.WriteFileAtomic(h.flags, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) sync(force bool) (Report, error) {
	h.t.Helper()
	return h.d.Sync(context.Background(), force)
}

func (h *harness) mustSync() Report {
	h.t.Helper()
	rep, err := h.sync(false)
	if err != nil {
		h.t.Fatalf("sync: %v", err)
	}
	return rep
}

// published loads the file output.
func (h *harness) published() *flagset.Set {
	h.t.Helper()
	data, err := os.ReadFile(h.out)
	if err != nil {
		h.t.Fatal(err)
	}
	set, probs, err := flagset.Load(data)
	if err != nil || len(probs) > 0 {
		h.t.Fatalf("published snapshot invalid: %v %v", err, probs)
	}
	return set
}

func counter(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 16)
	c.Collect(ch)
	close(ch)
	total := 0.0
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		switch {
		case pb.Counter != nil:
			total += pb.Counter.GetValue()
		case pb.Gauge != nil:
			total += pb.Gauge.GetValue()
		}
	}
	return total
}

func TestSyncPublishesFileAndRedis(t *testing.T) {
	h := newHarness(t, hopts{redis: true})
	before := time.Now().UnixMilli()
	rep := h.mustSync()
	if rep.Result != "published" || rep.Flags != 3 || rep.Generation < before {
		t.Fatalf("report = %+v", rep)
	}
	set := h.published()
	if set.FlagSetID() != "test" || set.Revision() != rep.Revision || set.Generation() != rep.Generation || set.Len() != 3 {
		t.Fatalf("metadata: id=%q rev=%q gen=%d len=%d", set.FlagSetID(), set.Revision(), set.Generation(), set.Len())
	}
	if at, ok := set.GeneratedAt(); !ok || time.Since(at) > time.Minute {
		t.Errorf("generatedAt = %v %v", at, ok)
	}
	if f, _ := set.Flag("a"); f.Metadata[flagset.MetaSource] != "file:"+filepath.ToSlash(h.flags) {
		t.Errorf("metadata.source = %v", f.Metadata[flagset.MetaSource])
	}
	fileBytes, _ := os.ReadFile(h.out)
	canon, _ := set.Canonical()
	doc, err := flagset.Parse(fileBytes)
	if err != nil {
		t.Fatal(err)
	}
	delete(doc.Metadata, flagset.MetaVersion) // so the set's revision is computed from the content
	if content, _ := flagset.Compile(doc); content.Revision() != rep.Revision {
		t.Errorf("metadata.version %s is not the revision of the content (%s)", rep.Revision, content.Revision())
	}
	if !bytes.Equal(canon, fileBytes) {
		t.Error("the file is not the canonical encoding of its document")
	}
	ctx := context.Background()
	var redisBytes []byte
	redisBytes, err = transport.Read(ctx, h.rc, "flagsync:test")
	if err != nil || !bytes.Equal(redisBytes, fileBytes) {
		t.Fatalf("redis snapshot differs from the file (err %v)", err)
	}
	if rev, _ := h.rc.Get(ctx, transport.KeysFor("flagsync:test").Revision).Result(); rev != rep.Revision {
		t.Errorf("redis revision %q", rev)
	}
	if gen, _ := transport.ReadGeneration(ctx, h.rc, "flagsync:test"); gen != rep.Generation {
		t.Errorf("redis generation %d", gen)
	}
	if len(canon) == 0 {
		t.Fatal("no canonical bytes")
	}

	// Nothing changed: nothing is written.
	pubs := counter(t, h.metrics.Publishes)
	rep2 := h.mustSync()
	if rep2.Result != "unchanged" || rep2.Generation != rep.Generation || counter(t, h.metrics.Publishes) != pubs {
		t.Fatalf("second sync = %+v", rep2)
	}
	// A change publishes a newer generation.
	h.writeFlags(flagYAML("a", "b", "c", "d"))
	rep3 := h.mustSync()
	if rep3.Result != "published" || rep3.Generation <= rep.Generation || rep3.Revision == rep.Revision || h.published().Len() != 4 {
		t.Fatalf("third sync = %+v", rep3)
	}
	if st := h.d.Status(); !st.Ready || st.Flags != 4 || len(st.Outputs) != 2 || !st.Outputs[0].UpToDate || !st.Outputs[1].UpToDate {
		t.Errorf("status = %+v", st)
	}
}

func TestRestartKeepsGenerationMonotonic(t *testing.T) {
	future := time.Now().Add(1000 * time.Hour)
	h := newHarness(t, hopts{now: func() time.Time { return future }})
	rep := h.mustSync()
	if rep.Generation != future.UnixMilli() {
		t.Fatalf("generation %d, want %d", rep.Generation, future.UnixMilli())
	}
	// A new daemon (real clock, far behind) must continue above the file's generation.
	cfg := h.d.Config()
	h.d = nil
	d2, err := New(cfg, Options{Metrics: NewMetrics(), Logger: slog.New(slog.NewTextHandler(h.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	rep2, err := d2.Sync(context.Background(), false)
	if err != nil || rep2.Result != "unchanged" || rep2.Generation != rep.Generation || !d2.Ready() {
		t.Fatalf("restart with the same flags: %+v %v ready=%v", rep2, err, d2.Ready())
	}
	h.writeFlags(flagYAML("x"))
	rep3, err := d2.Sync(context.Background(), true)
	if err != nil || rep3.Generation != rep.Generation+1 {
		t.Fatalf("after restart: %+v %v, want generation %d", rep3, err, rep.Generation+1)
	}
}

func TestFailedSourceKeepsLastGood(t *testing.T) {
	fake := newFake(t, &sources.Result{Overlays: map[string]sources.Overlay{
		"a":     {Value: true, HasValue: true, Origin: sources.Origin{Scheme: "fake", Location: "a"}},
		"extra": {Value: "x", HasValue: true, Origin: sources.Origin{Scheme: "fake", Location: "extra"}},
	}}, nil)
	h := newHarness(t, hopts{extraSrc: fmt.Sprintf("  - {name: %s, type: fake, timeout: 1s}\n", fake.name)})
	rep := h.mustSync()
	set := h.published()
	if set.Len() != 4 {
		t.Fatalf("flags = %v", set.Keys())
	}
	if f, _ := set.Flag("a"); *f.DefaultVariant != "on" {
		t.Fatalf("overlay not applied: %+v", f)
	}
	fake.set(nil, errors.New("store unreachable"))
	rep2, err := h.sync(false)
	if err == nil || !strings.Contains(err.Error(), "store unreachable") {
		t.Fatalf("err = %v", err)
	}
	if rep2.Result != "unchanged" || rep2.Revision != rep.Revision || h.published().Len() != 4 {
		t.Fatalf("a failing source changed the snapshot: %+v", rep2)
	}
	st := h.d.Status()
	if st.Sources[1].LastError == "" || st.Sources[1].LastSuccess == nil || st.Sources[1].Overlays != 2 {
		t.Errorf("source status = %+v", st.Sources[1])
	}
	if counter(t, h.metrics.SourceErrors) != 1 {
		t.Errorf("source errors metric = %v", counter(t, h.metrics.SourceErrors))
	}
	// The other source still contributes changes meanwhile.
	h.writeFlags(flagYAML("a", "b", "c", "d"))
	if rep3, _ := h.sync(false); rep3.Result != "published" || h.published().Len() != 5 {
		t.Fatalf("file change during the outage: %+v", rep3)
	}
}

func TestNeverFetchedSourceBlocksPublish(t *testing.T) {
	fake := newFake(t, nil, errors.New("access denied"))
	h := newHarness(t, hopts{extraSrc: fmt.Sprintf("  - {name: %s, type: fake}\n", fake.name)})
	_, err := h.sync(false)
	if err == nil || !strings.Contains(err.Error(), "never fetched successfully") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(h.out); !os.IsNotExist(err) {
		t.Fatalf("published without a source: %v", err)
	}
	if h.d.Ready() {
		t.Fatal("ready before a publish")
	}
	rep, err := h.sync(true)
	if rep.Result != "published" || h.published().Len() != 3 || !h.d.Ready() {
		t.Fatalf("forced: %+v %v", rep, err)
	}
}

func TestSourceTimeout(t *testing.T) {
	slow := &slowSource{name: "slow-" + t.Name()}
	sourceTypes["slow"] = func(name string, _ *yaml.Node, _ SourceDeps) (sources.Source, error) { return slow, nil }
	defer delete(sourceTypes, "slow")
	h := newHarness(t, hopts{extraSrc: "  - {name: s, type: slow, timeout: 50ms}\n"})
	start := time.Now()
	_, err := h.sync(false)
	if err == nil || !strings.Contains(err.Error(), "timed out after 50ms") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("the timeout did not cut the fetch short")
	}
}

type slowSource struct{ name string }

func (s *slowSource) Name() string { return s.name }
func (s *slowSource) Fetch(ctx context.Context) (*sources.Result, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestMalformedFlagAmongHundred(t *testing.T) {
	h := newHarness(t, hopts{})
	content := flagYAML(keys("f", 100)...)
	content = strings.Replace(content, "  f042:\n    state: ENABLED\n    variants: {\"on\": true, \"off\": false}\n    defaultVariant: \"off\"\n",
		"  f042:\n    state: ENABLED\n    variants: {\"on\": true, \"off\": false}\n    defaultVariant: \"maybe\"\n", 1)
	h.writeFlags(content)
	rep := h.mustSync()
	set := h.published()
	if set.Len() != 99 || rep.Flags != 99 {
		t.Fatalf("published %d flags, want 99", set.Len())
	}
	if _, ok := set.Flag("f042"); ok {
		t.Fatal("the malformed flag was published")
	}
	st := h.d.Status()
	if len(st.FlagErrors) == 0 || st.FlagErrors[0].Flag != "f042" || !strings.HasPrefix(st.FlagErrors[0].Path, "flags.f042") {
		t.Fatalf("status flag errors = %+v", st.FlagErrors)
	}
	if counter(t, h.metrics.FlagErrors) < 1 {
		t.Error("flag errors metric not counted")
	}
}

// TestGuards: a source that loses too many flags is held (its removals withheld, the
// published flags unchanged), a partial restore keeps the hold, a full restore ends
// it, removing exactly the allowed fraction publishes, and --force releases.
func TestGuards(t *testing.T) {
	h := newHarness(t, hopts{})
	h.writeFlags(flagYAML(keys("g", 10)...))
	first := h.mustSync()

	h.writeFlags(flagYAML(keys("g", 4)...)) // removes 6 of 10
	rep, err := h.sync(false)
	if !errors.Is(err, ErrGuard) || !errors.Is(err, ErrHeld) || rep.Result != "held" || !strings.Contains(err.Error(), "removes 6 of 10") {
		t.Fatalf("guard: %+v %v", rep, err)
	}
	if h.published().Revision() != first.Revision || rep.Revision != first.Revision {
		t.Fatal("a held removal was published")
	}
	st := h.d.Status()
	if !strings.Contains(st.Guard, "maxRemovedFraction") || st.LastSync.Result != "held" || len(st.Holds) != 1 ||
		st.Holds[0].Source != "git" || len(st.Holds[0].Withheld) != 6 || !st.Sources[0].Held {
		t.Errorf("status = %+v", st)
	}
	if counter(t, h.metrics.GuardTrips) != 1 || counter(t, h.metrics.SourceHeld) != 1 {
		t.Error("hold not counted")
	}
	if !strings.Contains(h.logs.String(), `"level":"ERROR"`) {
		t.Error("a hold must log at ERROR")
	}
	// A partial restore (back to a removal of exactly half) keeps the hold.
	h.writeFlags(flagYAML(keys("g", 5)...))
	if rep, err := h.sync(false); !errors.Is(err, ErrHeld) || h.published().Len() != 10 {
		t.Fatalf("partial restore published the removal: %+v %v", rep, err)
	}
	// Every withheld flag back: the hold ends.
	h.writeFlags(flagYAML(keys("g", 10)...))
	if rep := h.mustSync(); rep.Result != "unchanged" || len(rep.Held) != 0 || counter(t, h.metrics.GuardReleases) != 1 {
		t.Fatalf("full restore: %+v", rep)
	}
	// Removing exactly half is allowed.
	h.writeFlags(flagYAML(keys("g", 5)...))
	if rep := h.mustSync(); rep.Result != "published" || h.published().Len() != 5 {
		t.Fatalf("half removed: %+v", rep)
	}
	h.writeFlags("flags: {}\n")
	if _, err := h.sync(false); !errors.Is(err, ErrGuard) || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty: %v", err)
	}
	rep, err = h.sync(true)
	if err != nil || rep.Result != "published" || h.published().Len() != 0 {
		t.Fatalf("forced empty: %+v %v", rep, err)
	}
	if st := h.d.Status(); st.Guard != "" || len(st.Holds) != 0 {
		t.Errorf("guard message stays after a publish: %q %+v", st.Guard, st.Holds)
	}
}

func TestAllowEmptyGuard(t *testing.T) {
	h := newHarness(t, hopts{extra: "guards: {allowEmpty: true, maxRemovedFraction: 1}\n"})
	h.mustSync()
	h.writeFlags("flags: {}\n")
	if rep := h.mustSync(); rep.Flags != 0 {
		t.Fatalf("%+v", rep)
	}
}

func TestRunWatchAndRedisCatchUp(t *testing.T) {
	h := newHarness(t, hopts{redis: true, extra: "schedule: \"@every 1h\"\n"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	waitFor(t, "first publish", func() bool { return h.d.Ready() })

	// A burst of changes coalesces into few syncs and ends with the last content.
	pubs := counter(t, h.metrics.Publishes)
	for i := 1; i <= 10; i++ {
		h.writeFlags(flagYAML(append([]string{"a", "b", "c"}, keys("w", i)...)...))
	}
	waitFor(t, "watch-triggered publish", func() bool { return fileFlags(h.out) == 13 })
	if n := counter(t, h.metrics.Publishes) - pubs; n >= 20 {
		t.Errorf("10 quick changes caused %v publishes; they should coalesce", n)
	}

	// Redis down: the file is still published.
	h.redis.Stop()
	h.writeFlags(flagYAML(append([]string{"a", "b", "c"}, keys("w", 11)...)...))
	waitFor(t, "file published while redis is down", func() bool { return fileFlags(h.out) == 14 })
	waitFor(t, "redis error in status", func() bool {
		st := h.d.Status()
		return st.Outputs[1].LastError != "" && !st.Outputs[1].UpToDate
	})
	// Redis back (empty): caught up with the current snapshot without any change.
	h.redis.Start()
	want := h.d.Status().Revision
	waitFor(t, "redis caught up", func() bool {
		rev, _ := h.rc.Get(context.Background(), transport.KeysFor("flagsync:test").Revision).Result()
		return rev == want
	})
	b, _ := transport.Read(context.Background(), h.rc, "flagsync:test")
	f, _ := os.ReadFile(h.out)
	if !bytes.Equal(b, f) {
		t.Fatal("redis and file differ after the catch-up")
	}
}

func fileFlags(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	set, _, err := flagset.Load(data)
	if err != nil {
		return -1
	}
	return set.Len()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSecretsNeverInLogsOrStatus(t *testing.T) {
	const password = "pw-Secret-4242"
	const token = "tok-Secret-9191"
	r := testsvc.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer c.Close()
	if err := c.ConfigSet(context.Background(), "requirepass", password).Err(); err != nil {
		t.Fatal(err)
	}
	h := bareHarness(t, "flags.json", "a", "b")
	cfg := fmt.Sprintf(`flagSetId: test
sources:
  - {name: git, type: file, path: %q}
  - {name: ops, type: env}
outputs:
  file: {path: %q}
  redis: {url: "redis://:${REDIS_PASSWORD}@%s/0"}
`, h.flags, h.out, r.Addr)
	h.d = h.build(cfg, hopts{environ: []string{
		"FLAGSYNC_FLAG_A=true",
		`FLAGSYNC_FLAG_BROKEN={"state": "` + token + `"}`,
		`FLAGSYNC_FLAG_B={"defaultVariant": "` + token + `"}`,
	}})
	if _, err := h.sync(false); err != nil {
		t.Fatal(err)
	}
	// Then Redis goes away so the error paths log too.
	r.Stop()
	h.writeFlags(flagYAML("a", "b", "c"))
	_, err := h.sync(false)
	if err == nil {
		t.Fatal("want a redis error")
	}
	status := fmt.Sprintf("%+v %v", h.d.Status(), err)
	logs := h.logs.String()
	for _, secret := range []string{password, token} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
		if strings.Contains(status, secret) {
			t.Errorf("status contains %q:\n%s", secret, status)
		}
	}
	// The problems are still reported, by key.
	if !strings.Contains(status, "flags.broken") || !strings.Contains(status, "flags.b") {
		t.Errorf("status misses the env problems: %s", status)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
