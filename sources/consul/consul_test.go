package consul

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/internal/testsvc"
)

// isolateConsulEnv keeps a developer's CONSUL_* variables out of the tests.
func isolateConsulEnv(t *testing.T) {
	t.Helper()
	for _, v := range []string{"CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_TOKEN_FILE", "CONSUL_HTTP_SSL",
		"CONSUL_CACERT", "CONSUL_CLIENT_CERT", "CONSUL_CLIENT_KEY", "CONSUL_TLS_SERVER_NAME", "CONSUL_NAMESPACE", "CONSUL_PARTITION"} {
		t.Setenv(v, "")
	}
}

func adminKV(t testing.TB, c *testsvc.Consul) *api.KV {
	t.Helper()
	client, err := api.NewClient(&api.Config{Address: c.Addr, Token: c.ManagementToken})
	if err != nil {
		t.Fatal(err)
	}
	return client.KV()
}

func putKV(t testing.TB, kv *api.KV, key, value string) {
	t.Helper()
	if _, err := kv.Put(&api.KVPair{Key: key, Value: []byte(value)}, nil); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func newSource(t testing.TB, cfg Config) *Source {
	t.Helper()
	s, err := New("consul-test", cfg, Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// watch runs s.Watch until the test ends and delivers change signals on a channel.
func watch(t *testing.T, s *Source) <-chan struct{} {
	t.Helper()
	ch := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		err := s.Watch(ctx, func() {
			select {
			case ch <- struct{}{}:
			default:
			}
		})
		if err != context.Canceled {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return ch
}

func waitSignal(t *testing.T, ch <-chan struct{}, within time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(within):
		t.Fatalf("no change signal within %s after %s", within, what)
	}
}

func TestFetchMapsKeys(t *testing.T) {
	isolateConsulEnv(t)
	c := testsvc.StartConsul(t)
	kv := adminKV(t, c)
	putKV(t, kv, "flags/prod/new_dashboard", "true")
	putKV(t, kv, "flags/prod/team/checkout", `{"state":"ENABLED","variants":{"a":"a","b":"b"},"defaultVariant":"a"}`)
	putKV(t, kv, "flags/prod/team/", "") // a folder
	putKV(t, kv, "flags/prod/broken", `{"variants": [`)
	putKV(t, kv, "flags/prod/bad key", "true")
	putKV(t, kv, "flags/production/decoy", "true")

	src := newSource(t, Config{Address: c.Addr, Prefix: "flags/prod"})
	res, err := src.Fetch(context.Background())
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if ov := res.Overlays["new_dashboard"]; ov.Value != true || !strings.HasPrefix(ov.Origin.String(), "consul:flags/prod/new_dashboard@") || ov.Origin.Location != "flags/prod/new_dashboard" || ov.Origin.Version == 0 {
		t.Fatalf("new_dashboard = %+v", ov)
	}
	def := res.Definitions["team/checkout"]
	if def == nil || !strings.HasPrefix(def.Metadata[flagset.MetaSource].(string), "consul:flags/prod/team/checkout@") {
		t.Fatalf("team/checkout = %+v", def)
	}
	if o := res.Origins["team/checkout"]; o.Scheme != "consul" || o.Location != "flags/prod/team/checkout" || o.Version == 0 || o.String() != def.Metadata[flagset.MetaSource] {
		t.Fatalf("team/checkout origin = %+v, want the key and its ModifyIndex", o)
	}
	if len(res.Overlays)+len(res.Definitions) != 2 || len(res.Problems) != 2 {
		t.Fatalf("overlays %v, definitions %v, problems %v; want 2 flags and 2 problems", res.Overlays, res.Definitions, res.Problems)
	}
	for _, p := range res.Problems {
		if !strings.Contains(p.Message, "consul:flags/prod/"+p.Flag+"@") || !strings.HasPrefix(p.Path, "flags."+p.Flag) {
			t.Errorf("problem %q does not name its flag and key", p.Error())
		}
	}

	// An absent prefix is "no flags here", not an error.
	empty, err := newSource(t, Config{Address: c.Addr, Prefix: "nothing/here/"}).Fetch(context.Background())
	if err != nil || len(empty.Definitions)+len(empty.Overlays)+len(empty.Problems) != 0 {
		t.Fatalf("absent prefix: %+v, %v", empty, err)
	}
}

// TestFetchUsesTheWatchAnswer: the Fetch after a watch signal uses the blocking
// query's answer instead of listing again (it succeeds while Consul is frozen); the
// answer is used once, later fetches read Consul.
func TestFetchUsesTheWatchAnswer(t *testing.T) {
	isolateConsulEnv(t)
	c := testsvc.StartConsul(t)
	kv := adminKV(t, c)
	putKV(t, kv, "flags/x", "v1")
	src := newSource(t, Config{Address: c.Addr, Prefix: "flags/"})
	changes := watch(t, src)
	waitSignal(t, changes, 10*time.Second, "the watch started")
	if res, err := src.Fetch(context.Background()); err != nil || res.Overlays["x"].Value != "v1" {
		t.Fatalf("first fetch: %+v, %v", res, err)
	}
	putKV(t, kv, "flags/x", "v2")
	waitSignal(t, changes, 5*time.Second, "a put")
	c.Pause()
	defer c.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if res, err := src.Fetch(ctx); err != nil || res.Overlays["x"].Value != "v2" {
		t.Fatalf("fetch after the signal with Consul frozen = %+v, %v; want the watch's answer v2", res, err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	if res, err := src.Fetch(ctx2); err == nil {
		t.Fatalf("second fetch with Consul frozen = %+v; want an error (the answer is used once)", res)
	}
}

// TestFetchParsesOnlyChangedKeys: a key whose ModifyIndex did not change keeps its
// parsed definition; a rewritten key is parsed again.
func TestFetchParsesOnlyChangedKeys(t *testing.T) {
	isolateConsulEnv(t)
	c := testsvc.StartConsul(t)
	kv := adminKV(t, c)
	def := `{"state":"ENABLED","variants":{"a":"a","b":"b"},"defaultVariant":"a"}`
	putKV(t, kv, "flags/same", def)
	putKV(t, kv, "flags/changed", def)
	src := newSource(t, Config{Address: c.Addr, Prefix: "flags/"})
	r1, err := src.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	putKV(t, kv, "flags/changed", strings.Replace(def, `"defaultVariant":"a"`, `"defaultVariant":"b"`, 1))
	r2, err := src.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r2.Definitions["same"] != r1.Definitions["same"] {
		t.Error("an unchanged key was parsed again")
	}
	if r2.Definitions["changed"] == r1.Definitions["changed"] || *r2.Definitions["changed"].DefaultVariant != "b" {
		t.Errorf("the rewritten key was not parsed again: %+v", r2.Definitions["changed"])
	}
	if src := r2.Definitions["changed"].Metadata[flagset.MetaSource]; src == r1.Definitions["changed"].Metadata[flagset.MetaSource] {
		t.Errorf("metadata.source %v does not carry the new ModifyIndex", src)
	}
	// A key not parsed again keeps its origin; a rewritten one has the new index.
	if r2.Origins["same"] != r1.Origins["same"] || r2.Origins["same"].IsZero() || r2.Origins["changed"].Version <= r1.Origins["changed"].Version {
		t.Errorf("origins %+v after %+v", r2.Origins, r1.Origins)
	}
}

// TestBadValuesAreProblems: a value that is not a definition, a patch or a bare value
// (broken YAML, a YAML bomb, a tag, a sequence) is a per-flag problem naming the flag,
// the key and its ModifyIndex, never a flag.
func TestBadValuesAreProblems(t *testing.T) {
	isolateConsulEnv(t)
	c := testsvc.StartConsul(t)
	kv := adminKV(t, c)
	bomb := "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n" +
		"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
	bad := map[string]string{
		"brace":     "{broken: [",
		"plain":     "broken: [",
		"bomb":      bomb,
		"defbomb":   "variants: {a: 1}\ndefaultVariant: a\nstate: ENABLED\n" + bomb,
		"tagged":    "!!binary aGVsbG8=",
		"list":      "- a\n- b",
		"twodocs":   "true\n---\nfalse",
		"notfinite": ".inf",
	}
	for k, v := range bad {
		putKV(t, kv, "flags/"+k, v)
	}
	putKV(t, kv, "flags/good", "green")
	res, err := newSource(t, Config{Address: c.Addr, Prefix: "flags/"}).Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Definitions) != 0 || len(res.Overlays) != 1 || res.Overlays["good"].Value != "green" {
		t.Fatalf("definitions %v, overlays %v; want only good", res.Definitions, res.Overlays)
	}
	if len(res.Problems) != len(bad) {
		t.Fatalf("problems = %v, want one per bad value", res.Problems)
	}
	for _, p := range res.Problems {
		pair, _, err := kv.Get("flags/"+p.Flag, nil)
		if err != nil || pair == nil {
			t.Fatalf("problem for unknown flag %q: %v", p.Flag, err)
		}
		origin := fmt.Sprintf("(consul:flags/%s@%d)", p.Flag, pair.ModifyIndex)
		if !strings.HasPrefix(p.Path, "flags."+p.Flag) || !strings.HasSuffix(p.Message, origin) {
			t.Errorf("problem %q does not name its flag, key and ModifyIndex %s", p.Error(), origin)
		}
	}
}

func TestWatchSeesChangesAndSurvivesARestart(t *testing.T) {
	isolateConsulEnv(t)
	c := testsvc.StartConsul(t)
	kv := adminKV(t, c)
	putKV(t, kv, "flags/beta_mode", "false")
	src := newSource(t, Config{Address: c.Addr, Prefix: "flags/", MaxBackoff: 500 * time.Millisecond})
	ctx := context.Background()
	changes := watch(t, src)
	waitSignal(t, changes, 10*time.Second, "the watch started (it signals once armed)")

	putKV(t, kv, "flags/beta_mode", "true")
	waitSignal(t, changes, 5*time.Second, "a put")
	res, err := src.Fetch(ctx)
	if err != nil || res.Overlays["beta_mode"].Value != true {
		t.Fatalf("after put: %+v, %v", res, err)
	}

	// A write outside the prefix is not a change of this source.
	putKV(t, kv, "elsewhere/x", "1")
	select {
	case <-changes:
		t.Fatal("a write outside the prefix signalled a change")
	case <-time.After(300 * time.Millisecond):
	}

	if _, err := kv.Delete("flags/beta_mode", nil); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, changes, 5*time.Second, "a delete")
	if res, err := src.Fetch(ctx); err != nil || len(res.Overlays) != 0 {
		t.Fatalf("after delete: %+v, %v", res, err)
	}

	// Consul goes away: Fetch fails (it must never look like "no flags").
	c.Stop()
	if res, err := src.Fetch(ctx); err == nil || !strings.Contains(err.Error(), "consul flags/:") {
		t.Fatalf("Fetch with Consul down = %+v, %v; want an error", res, err)
	}
	// It comes back empty (-dev keeps no data, so indexes restart lower): the watch
	// re-arms on its own, signals once (the daemon's fetches failed meanwhile), and
	// then sees new content.
	c.Start()
	waitSignal(t, changes, 15*time.Second, "Consul came back")
	putKV(t, kv, "flags/after_restart", `{"state":"DISABLED"}`)
	waitSignal(t, changes, 5*time.Second, "a key was written after the restart")
	res, err = src.Fetch(ctx)
	if err != nil {
		t.Fatalf("Fetch after restart: %v", err)
	}
	if ov := res.Overlays["after_restart"]; ov.State == nil || *ov.State != flagset.Disabled {
		t.Fatalf("after restart: %+v", res.Overlays)
	}
	putKV(t, kv, "flags/after_restart", `{"state":"ENABLED"}`)
	waitSignal(t, changes, 5*time.Second, "a put after the restart")
}

func TestACL(t *testing.T) {
	isolateConsulEnv(t)
	c := testsvc.StartConsul(t, testsvc.WithACL())
	admin, err := api.NewClient(&api.Config{Address: c.Addr, Token: c.ManagementToken})
	if err != nil {
		t.Fatal(err)
	}
	putKV(t, admin.KV(), "flags/new_dashboard", "true")
	putKV(t, admin.KV(), "secrets/db", "hunter2")
	if _, _, err := admin.ACL().PolicyCreate(&api.ACLPolicy{Name: "flagsync-read", Rules: `key_prefix "flags/" { policy = "read" }`}, nil); err != nil {
		t.Fatalf("policy: %v", err)
	}
	tok, _, err := admin.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{Name: "flagsync-read"}}}, nil)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	ctx := context.Background()

	res, err := newSource(t, Config{Address: c.Addr, Prefix: "flags/", Token: tok.SecretID}).Fetch(ctx)
	if err != nil || res.Overlays["new_dashboard"].Value != true {
		t.Fatalf("with a read token: %+v, %v", res, err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(tok.SecretID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newSource(t, Config{Address: c.Addr, Prefix: "flags/", TokenFile: tokenFile}).Fetch(ctx); err != nil {
		t.Fatalf("with a token file: %v", err)
	}

	for name, cfg := range map[string]Config{
		"no token":              {Address: c.Addr, Prefix: "flags/"},
		"token for flags/ only": {Address: c.Addr, Prefix: "secrets/", Token: tok.SecretID},
	} {
		res, err := newSource(t, cfg).Fetch(ctx)
		want := `permission denied reading prefix "` + cfg.Prefix + `"`
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrPermissionDenied) {
			t.Errorf("%s: Fetch = %+v, %v; want an error containing %s", name, res, err, want)
		}
		t.Logf("%s: %v", name, err)
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "prefix: required"},
		{Config{Prefix: "f/", Consistency: "eventual"}, "consistency"},
		{Config{Prefix: "f/", Token: "a", TokenFile: "b"}, "tokenFile"},
		{Config{Prefix: "f/", WaitTime: -time.Second}, "waitTime"},
	} {
		if _, err := tc.cfg.withDefaults(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	cfg, err := Config{Prefix: "/flags"}.withDefaults()
	if err != nil || cfg.Prefix != "flags/" || cfg.Consistency != Stale || !*cfg.Watch || cfg.WaitTime != DefaultWaitTime || cfg.MaxStale != DefaultMaxStale {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	prev := time.Duration(0)
	for n := 1; n <= 4; n++ {
		d := backoffFor(n, time.Minute)
		nominal := minBackoff << (n - 1)
		if d < nominal*8/10 || d > nominal*12/10 || d <= prev {
			t.Fatalf("backoff(%d) = %s, want %s ±20%% and growing", n, d, nominal)
		}
		prev = d
	}
	if d := backoffFor(60, 2*time.Second); d > 2400*time.Millisecond {
		t.Fatalf("backoff not capped: %s", d)
	}
}

func TestWatchDisabledOnlyWaits(t *testing.T) {
	off := false
	src := newSource(t, Config{Address: "127.0.0.1:1", Prefix: "flags/", Watch: &off})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	called := false
	if err := src.Watch(ctx, func() { called = true }); err != context.DeadlineExceeded || called {
		t.Fatalf("Watch with watch: false = %v (called %v)", err, called)
	}
}

func TestWatchStartedWhileConsulIsDownSignalsWhenItComesUp(t *testing.T) {
	isolateConsulEnv(t)
	c := testsvc.StartConsul(t)
	c.Stop()
	src := newSource(t, Config{Address: c.Addr, Prefix: "flags/", MaxBackoff: 200 * time.Millisecond})
	changes := watch(t, src)
	time.Sleep(300 * time.Millisecond)
	select {
	case <-changes:
		t.Fatal("signalled while Consul was down")
	default:
	}
	c.Start()
	waitSignal(t, changes, 10*time.Second, "Consul came up")
	if _, err := src.Fetch(context.Background()); err != nil {
		t.Fatalf("Fetch once Consul is up: %v", err)
	}
}
