package daemon

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/ha"
	"github.com/flagsync/flagsync/transport"
)

func TestConfigHAAndOFREP(t *testing.T) {
	base := "flagSetId: p\nsources:\n  - {name: f, type: file, path: x.yaml}\noutputs:\n  file: {path: o.json}\n"
	withRedis := base + "  redis: {url: \"redis://127.0.0.1:1/0\"}\n"
	withConsul := "flagSetId: p\nsources:\n  - {name: kv, type: consul, prefix: flags/}\noutputs:\n  redis: {url: \"redis://127.0.0.1:1/0\"}\n"

	c, err := ParseConfig([]byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HA.Enabled || c.HA.TTL != ha.DefaultTTL || !c.HTTP.OFREP.On() || c.HTTP.OFREP.RateLimit != 0 {
		t.Errorf("defaults: ha %+v ofrep %+v", c.HA, c.HTTP.OFREP)
	}
	c, err = ParseConfig([]byte(withRedis+"ha: {enabled: true, ttl: 2s}\nhttp:\n  ofrep: {enabled: false}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HA.Backend != HABackendRedis || c.HA.TTL != 2*time.Second || c.HTTP.OFREP.On() {
		t.Errorf("redis ha: %+v ofrep on %v", c.HA, c.HTTP.OFREP.On())
	}
	c, err = ParseConfig([]byte(withConsul+"ha: {enabled: true}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HA.Backend != HABackendConsul || c.HA.Key != "flagsync/p/leader" {
		t.Errorf("auto with a consul source: %+v", c.HA)
	}
	env := lookupFrom(map[string]string{"KEY": "k-123", "EMPTY": ""})
	c, err = ParseConfig([]byte(base+"http:\n  ofrep: {apiKeys: [\"${KEY}\"], bearerTokens: [t1], requireTargetingKey: true, rateLimit: 100, rateBurst: 10}\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	if o := c.HTTP.OFREP; len(o.APIKeys) != 1 || o.APIKeys[0] != "k-123" || o.BearerTokens[0] != "t1" || !o.RequireTargetingKey || o.RateBurst != 10 {
		t.Errorf("ofrep: %+v", o)
	}

	for _, tc := range []struct{ cfg, want string }{
		{base + "ha: {enabled: true}\n", "ha.enabled: needs outputs.redis"},
		{withRedis + "ha: {enabled: true, backend: zookeeper}\n", `ha.backend: "zookeeper" is not one of`},
		{withRedis + "ha: {enabled: true, backend: consul}\n", "ha.backend: consul needs a source of type consul"},
		{withRedis + "ha: {enabled: true, key: x}\n", "ha.key: only the consul backend"},
		{withRedis + "ha: {enabled: true, ttl: 100ms}\n", "ha.ttl: must be at least 1s"},
		{withRedis + "ha: {enabled: true, ttl: soon}\n", "ha.ttl: must be a duration"},
		{withRedis + "ha: {leader: true}\n", "ha.leader: unknown key"},
		{base + "http:\n  ofrep: {apiKeys: [\"${EMPTY:-}\"]}\n", "http.ofrep.apiKeys[0]: empty credential"},
		{base + "http:\n  ofrep: {rateLimit: -1}\n", "http.ofrep.rateLimit: must not be negative"},
		{base + "http:\n  ofrep: {rateBurst: 5}\n", "http.ofrep.rateBurst: needs http.ofrep.rateLimit"},
		{base + "http:\n  ofrep: {apikeys: [a]}\n", "http.ofrep.apikeys: unknown key"},
	} {
		_, err := ParseConfig([]byte(tc.cfg), env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config\n%s\nerr = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func request(t *testing.T, srv *httptest.Server, method, path, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// OFREP and the status page are served by the daemon's server from the current
// snapshot, follow new publishes, and survive a reload (Set with a new daemon).
func TestServerOFREPAndStatusPage(t *testing.T) {
	h := newHarness(t, hopts{extra: "http:\n  ofrep: {apiKeys: [k1]}\n  auth: {read: {env: [READ_TOKEN]}}\n"})
	s := NewServer(h.metrics)
	srv := httptest.NewServer(s)
	defer srv.Close()
	s.Set(h.d)
	auth := map[string]string{"X-API-Key": "k1"}

	if r, _ := request(t, srv, "POST", "/ofrep/v1/evaluate/flags/a", `{"context":{}}`, auth); r.StatusCode == 200 {
		t.Errorf("OFREP before any snapshot = 200")
	}
	h.mustSync()
	if h.d.FlagSet() == nil || h.d.FlagSet().Revision() != h.d.Status().Revision {
		t.Fatalf("FlagSet does not follow the published snapshot")
	}
	if r, _ := request(t, srv, "POST", "/ofrep/v1/evaluate/flags/a", `{"context":{}}`, nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("OFREP without the API key = %d, want 401", r.StatusCode)
	}
	r, body := request(t, srv, "POST", "/ofrep/v1/evaluate/flags/a", `{"context":{"targetingKey":"u1"}}`, auth)
	var single struct {
		Key     string `json:"key"`
		Value   any    `json:"value"`
		Variant string `json:"variant"`
	}
	if err := json.Unmarshal([]byte(body), &single); err != nil || r.StatusCode != 200 || single.Key != "a" || single.Value != false || single.Variant != "off" {
		t.Fatalf("single = %d %s", r.StatusCode, body)
	}
	r, body = request(t, srv, "POST", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"u1"}}`, auth)
	etag := r.Header.Get("ETag")
	if r.StatusCode != 200 || etag == "" || !strings.Contains(body, `"key":"c"`) {
		t.Fatalf("bulk = %d etag %q %s", r.StatusCode, etag, body)
	}
	hdr := map[string]string{"X-API-Key": "k1", "If-None-Match": etag}
	if r, _ := request(t, srv, "POST", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"u1"}}`, hdr); r.StatusCode != http.StatusNotModified {
		t.Errorf("bulk with the current ETag = %d, want 304", r.StatusCode)
	}

	// A new publish changes the answers and the ETag.
	h.writeFlags(flagYAML("a", "b", "c", "d_new"))
	h.mustSync()
	if r, body := request(t, srv, "POST", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"u1"}}`, hdr); r.StatusCode != 200 || !strings.Contains(body, "d_new") {
		t.Errorf("bulk after a publish = %d %s", r.StatusCode, body)
	}

	// Status page at /: flags, sources, outputs; an OFREP key does not open it.
	if r, _ := request(t, srv, "GET", "/", "", auth); r.StatusCode != http.StatusForbidden {
		t.Errorf("status page with an OFREP key = %d, want 403", r.StatusCode)
	}
	r, page := request(t, srv, "GET", "/", "", map[string]string{"Authorization": "Bearer " + testReadToken})
	if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status page = %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	for _, want := range []string{"d_new", ">git<", h.out, h.d.Status().Revision[:12]} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if r, _ := request(t, srv, "GET", "/nope", "", nil); r.StatusCode != 404 {
		t.Errorf("GET /nope = %d", r.StatusCode)
	}

	// Reload: a new daemon with OFREP off; before and after, nothing breaks.
	cfg := *h.d.Config()
	cfg.HTTP.OFREP.Enabled = new(bool)
	nd, err := New(&cfg, Options{Metrics: h.metrics, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()
	s.Set(nd)
	if nd.FlagSet() == nil || nd.FlagSet() != h.d.FlagSet() {
		t.Errorf("reloaded daemon does not carry the served set over")
	}
	if r, _ := request(t, srv, "POST", "/ofrep/v1/evaluate/flags/a", `{"context":{}}`, auth); r.StatusCode != 404 {
		t.Errorf("OFREP with http.ofrep.enabled false = %d, want 404", r.StatusCode)
	}
}

// fakeElector is an ha.Elector whose leadership the test sets.
type fakeElector struct{ fence atomic.Int64 }

func (f *fakeElector) Run(ctx context.Context, _ func(context.Context, int64), _ func()) error {
	<-ctx.Done()
	return nil
}
func (f *fakeElector) IsLeader() bool { return f.fence.Load() != 0 }
func (f *fakeElector) Fence() int64   { return f.fence.Load() }

// A standby writes its file but leaves Redis to the leader, without an error or a
// publish metric, and is ready; once leader it publishes fenced.
func TestStandbyLeavesRedisToTheLeader(t *testing.T) {
	h := newHarness(t, hopts{redis: true, extra: "ha: {enabled: true, ttl: 2s}\n"})
	el := &fakeElector{}
	m := NewMetrics()
	d, err := New(h.d.Config(), Options{Metrics: m, Elector: el, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	if d.IsLeader() {
		t.Fatal("IsLeader before election")
	}
	if _, err := d.Sync(ctx, false); err != nil {
		t.Fatalf("standby sync: %v", err)
	}
	if !d.Ready() {
		t.Error("standby not ready")
	}
	if _, err := transport.Read(ctx, h.rc, transport.DefaultPrefix("test")); err == nil {
		t.Error("standby wrote to Redis")
	}
	st := d.Status()
	for _, o := range st.Outputs {
		if o.LastError != "" || !o.UpToDate {
			t.Errorf("standby output %s: %+v", o.Name, o)
		}
	}
	if hs := d.HAStatus(); hs == nil || hs.Role != "standby" || hs.Backend != "redis" {
		t.Errorf("HAStatus = %+v", hs)
	}
	srv := httptest.NewServer(NewServer(m))
	defer srv.Close()
	if _, body := request(t, srv, "GET", "/metrics", "", nil); strings.Contains(body, `flagsync_publishes_total{output="redis"}`) ||
		strings.Contains(body, `flagsync_output_errors_total{output="redis"}`) {
		t.Errorf("standby counted a Redis publish or error")
	}

	el.fence.Store(42)
	h.writeFlags(flagYAML("a", "b", "c", "d"))
	d.Elected(ctx)
	data, err := transport.Read(ctx, h.rc, transport.DefaultPrefix("test"))
	if err != nil || !strings.Contains(string(data), `"d"`) {
		t.Fatalf("leader did not publish to Redis: %v", err)
	}
	if f, _ := h.rc.Get(ctx, ha.KeysFor(transport.DefaultPrefix("test")).Fence).Int64(); f != 42 {
		t.Errorf("stored fence = %d, want 42", f)
	}
	if !d.IsLeader() || d.HAStatus().Role != "leader" || d.HAStatus().Fence != 42 {
		t.Errorf("leader state: %v %+v", d.IsLeader(), d.HAStatus())
	}
	// A newer leader elsewhere: our fenced write is refused and we stand by quietly.
	h.rc.Set(ctx, ha.KeysFor(transport.DefaultPrefix("test")).Fence, 50, 0)
	h.writeFlags(flagYAML("a", "b", "c", "d", "e"))
	if _, err := d.Sync(ctx, false); err != nil {
		t.Fatalf("fenced-out sync reported an error: %v", err)
	}
	if data, _ := transport.Read(ctx, h.rc, transport.DefaultPrefix("test")); strings.Contains(string(data), `"e"`) {
		t.Error("fenced-out leader overwrote Redis")
	}
}

// The set served is the one the sync compiled to validate the snapshot, stamped
// with the snapshot's revision and generation: nothing is compiled to serve it.
func TestFlagSetIsTheSyncedSet(t *testing.T) {
	h := newHarness(t, hopts{})
	h.mustSync()
	check := func(n int) *flagset.Set {
		t.Helper()
		st := h.d.Status()
		set := h.d.FlagSet()
		if set == nil || set.Len() != n || set.Revision() != st.Revision || set.Generation() != st.Generation {
			t.Fatalf("FlagSet = %v, status %+v", set, st)
		}
		h.d.mu.Lock()
		cur := h.d.current
		h.d.mu.Unlock()
		if cur.set != set {
			t.Error("the served set is not the one the sync built")
		}
		for _, key := range set.Keys() {
			r := set.Evaluate(key, flagset.TypeBoolean, false, nil)
			if r.Metadata[flagset.MetaVersion] != st.Revision || r.Metadata[flagset.MetaGeneration] != float64(st.Generation) ||
				r.Metadata[flagset.MetaFlagSetID] != st.FlagSetID {
				t.Errorf("%s: evaluation metadata %v, status %+v", key, r.Metadata, st)
			}
		}
		// The published bytes are the served set's document.
		loaded, problems, err := flagset.Load(h.d.Snapshot())
		if err != nil || len(problems) > 0 || loaded.Revision() != set.Revision() || loaded.Len() != n {
			t.Errorf("published snapshot: %v %v %v", loaded, problems, err)
		}
		return set
	}
	first := check(3)
	h.writeFlags(flagYAML("a", "b", "c", "d"))
	h.mustSync()
	if second := check(4); second == first {
		t.Error("a new publish kept serving the old set")
	}
}
