package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flagsync/flagsync/lifecycle"
)

type received struct {
	header http.Header
	body   []byte
}

// receiver is a local webhook endpoint answering with the given status codes in turn
// (the last one repeats).
type receiver struct {
	mu       sync.Mutex
	got      []received
	statuses []int
	srv      *httptest.Server
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	r := &receiver{statuses: statuses}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{req.Header.Clone(), b})
		code := http.StatusOK
		if len(r.statuses) > 0 {
			code = r.statuses[min(len(r.got)-1, len(r.statuses)-1)]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func strp(s string) *string { return &s }

func sampleEvent() Event {
	return Event{
		Type: TypePublish, Time: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC), FlagSetID: "shop",
		Revision: "abcdef0123456789", PreviousRevision: "0011", Generation: 7,
		Changes: []Change{
			{Flag: "checkout_v2", Kind: KindChanged, Owner: "payments",
				Old: &State{State: "ENABLED", DefaultVariant: strp("off"), DefaultValue: false},
				New: &State{State: "ENABLED", DefaultVariant: strp("on"), DefaultValue: true}},
			{Flag: "dark_mode", Kind: KindAdded, New: &State{State: "ENABLED", DefaultVariant: strp("on"), DefaultValue: true}},
			{Flag: "old_banner", Kind: KindRemoved, Old: &State{State: "DISABLED"}},
		},
	}
}

func newNotifier(t *testing.T, cfg Config, logw io.Writer) *Notifier {
	t.Helper()
	if logw == nil {
		logw = io.Discard
	}
	n, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(logw, nil)), Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	return n
}

func closeNotifier(t *testing.T, n *Notifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestWebhookJSONSigned(t *testing.T) {
	r := newReceiver(t)
	secret := "s3cret"
	n := newNotifier(t, Config{Webhooks: []WebhookConfig{{Name: "audit", URL: r.srv.URL + "/hook", Secret: secret, Headers: map[string]string{"X-Team": "flags"}}}}, nil)
	if q := n.Notify(sampleEvent()); q != 1 {
		t.Fatalf("queued for %d sinks, want 1", q)
	}
	closeNotifier(t, n)
	reqs := r.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests", len(reqs))
	}
	h, body := reqs[0].header, reqs[0].body
	if err := Verify([]byte(secret), h.Get(HeaderTimestamp), h.Get(HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	if err := Verify([]byte("wrong"), h.Get(HeaderTimestamp), h.Get(HeaderSignature), body, time.Now(), 5*time.Minute); err == nil {
		t.Error("wrong secret verified")
	}
	if err := Verify([]byte(secret), h.Get(HeaderTimestamp), h.Get(HeaderSignature), body, time.Now().Add(time.Hour), 5*time.Minute); err == nil || !strings.Contains(err.Error(), "replay") {
		t.Errorf("old timestamp accepted: %v", err)
	}
	tampered := bytes.Replace(body, []byte("checkout_v2"), []byte("checkout_v3"), 1)
	if err := Verify([]byte(secret), h.Get(HeaderTimestamp), h.Get(HeaderSignature), tampered, time.Now(), 5*time.Minute); err == nil {
		t.Error("tampered body verified")
	}
	if h.Get(HeaderEvent) != "publish" || h.Get("X-Team") != "flags" || h.Get(HeaderDelivery) == "" || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers: %v", h)
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Environment != "prod" || ev.Revision != "abcdef0123456789" || len(ev.Changes) != 3 || ev.Changes[0].New.DefaultValue != true || *ev.Changes[0].Old.DefaultVariant != "off" {
		t.Errorf("payload: %s", body)
	}
	if st := n.Metrics().Stats("audit"); st.Delivered != 1 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestWebhookRetriesOn500(t *testing.T) {
	r := newReceiver(t, 500, 503, 200)
	n := newNotifier(t, Config{Webhooks: []WebhookConfig{{Name: "w", URL: r.srv.URL, MaxAttempts: 5,
		BackoffMin: lifecycle.Duration(time.Millisecond), BackoffMax: lifecycle.Duration(5 * time.Millisecond)}}}, nil)
	n.Notify(sampleEvent())
	closeNotifier(t, n)
	reqs := r.requests()
	if len(reqs) != 3 {
		t.Fatalf("got %d attempts, want 3", len(reqs))
	}
	if reqs[0].header.Get(HeaderDelivery) != reqs[2].header.Get(HeaderDelivery) {
		t.Error("delivery id must stay the same across retries")
	}
	if st := n.Metrics().Stats("w"); st.Delivered != 1 || st.Retries != 2 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestWebhookGivesUp(t *testing.T) {
	r500 := newReceiver(t, 500)
	r400 := newReceiver(t, 400)
	var logs bytes.Buffer
	var mu sync.Mutex
	n := newNotifier(t, Config{Webhooks: []WebhookConfig{
		{Name: "down", URL: r500.srv.URL, MaxAttempts: 3, BackoffMin: lifecycle.Duration(time.Millisecond), BackoffMax: lifecycle.Duration(2 * time.Millisecond)},
		{Name: "bad", URL: r400.srv.URL, MaxAttempts: 3, BackoffMin: lifecycle.Duration(time.Millisecond)},
	}}, lockedWriter{&mu, &logs})
	n.Notify(sampleEvent())
	closeNotifier(t, n)
	if len(r500.requests()) != 3 || len(r400.requests()) != 1 {
		t.Fatalf("attempts: 500 → %d (want 3), 400 → %d (want 1, not retried)", len(r500.requests()), len(r400.requests()))
	}
	if st := n.Metrics().Stats("down"); st.Failed != 1 || st.Retries != 2 {
		t.Errorf("down stats %+v", st)
	}
	if st := n.Metrics().Stats("bad"); st.Failed != 1 || st.Retries != 0 {
		t.Errorf("bad stats %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "notify delivery failed") || !strings.Contains(logs.String(), "400 Bad Request") {
		t.Errorf("failure not logged: %s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestFilter(t *testing.T) {
	all := newReceiver(t)
	checkout := newReceiver(t)
	removals := newReceiver(t)
	guards := newReceiver(t)
	n := newNotifier(t, Config{Webhooks: []WebhookConfig{
		{Name: "all", URL: all.srv.URL},
		{Name: "checkout", URL: checkout.srv.URL, Filter: Filter{Flags: []string{"checkout_*"}}},
		{Name: "removals", URL: removals.srv.URL, Filter: Filter{Kinds: []Kind{KindRemoved, KindCleanup}}},
		{Name: "guards", URL: guards.srv.URL, Filter: Filter{Kinds: []Kind{KindGuard}}},
	}}, nil)
	n.Notify(sampleEvent())
	n.Notify(GuardEvent("shop", "would remove 80% of flags", nil, time.Now()))
	n.Notify(CleanupEvent("shop", []lifecycle.Action{{Flag: "promo_2025", Kind: lifecycle.ActionDisable, Owner: "growth"}}, time.Now()))
	closeNotifier(t, n)

	changes := func(r *receiver) (out []string) {
		for _, req := range r.requests() {
			var ev Event
			if err := json.Unmarshal(req.body, &ev); err != nil {
				t.Fatal(err)
			}
			out = append(out, string(ev.Type)+":")
			for _, c := range ev.Changes {
				out[len(out)-1] += c.Flag + "/" + string(c.Kind) + " "
			}
		}
		return out
	}
	check := func(name string, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s got %q, want %q", name, got, want)
		}
	}
	check("all", changes(all), "publish:checkout_v2/changed dark_mode/added old_banner/removed ", "guard:", "cleanup:promo_2025/cleanup ")
	check("checkout", changes(checkout), "publish:checkout_v2/changed ")
	check("removals", changes(removals), "publish:old_banner/removed ", "cleanup:promo_2025/cleanup ")
	check("guards", changes(guards), "guard:")

	if err := (Filter{Flags: []string{"[bad"}}).validate("f"); err == nil {
		t.Error("bad glob accepted")
	}
	if err := (Filter{Kinds: []Kind{"exploded"}}).validate("f"); err == nil {
		t.Error("unknown kind accepted")
	}
}

func TestSlackShape(t *testing.T) {
	r := newReceiver(t)
	n := newNotifier(t, Config{Webhooks: []WebhookConfig{{Name: "slack", URL: r.srv.URL, Format: "slack"}}}, nil)
	ev := sampleEvent()
	ev.Changes[0].Flag = "checkout_<v2>"
	n.Notify(ev)
	closeNotifier(t, n)
	reqs := r.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"text"`
		} `json:"blocks"`
	}
	dec := json.NewDecoder(bytes.NewReader(reqs[0].body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&msg); err != nil {
		t.Fatalf("not the Slack shape: %v: %s", err, reqs[0].body)
	}
	if !strings.Contains(msg.Text, "shop (prod): published 3 flag change(s), revision abcdef012345") {
		t.Errorf("text %q", msg.Text)
	}
	if len(msg.Blocks) != 2 || msg.Blocks[1].Type != "section" || msg.Blocks[1].Text.Type != "mrkdwn" {
		t.Fatalf("blocks %+v", msg.Blocks)
	}
	lines := msg.Blocks[1].Text.Text
	for _, want := range []string{"`checkout_&lt;v2&gt;` changed: ENABLED, default off=false → ENABLED, default on=true, owner payments", "`dark_mode` added", "`old_banner` removed (was DISABLED)"} {
		if !strings.Contains(lines, want) {
			t.Errorf("missing %q in %q", want, lines)
		}
	}
}

func TestExec(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "stdin.json")
	var logs bytes.Buffer
	var mu sync.Mutex
	n := newNotifier(t, Config{Exec: []ExecConfig{
		{Name: "capture", Command: []string{"sh", "-c", `cat > "$0"; echo smoke ok`, out}},
		{Name: "slow", Command: []string{"sleep", "10"}, Timeout: lifecycle.Duration(200 * time.Millisecond)},
		{Name: "failing", Command: []string{"sh", "-c", "echo boom >&2; exit 3"}},
	}}, lockedWriter{&mu, &logs})
	start := time.Now()
	n.Notify(sampleEvent())
	closeNotifier(t, n)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("timeout not enforced: took %v", el)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil || ev.FlagSetID != "shop" || len(ev.Changes) != 3 {
		t.Errorf("stdin was %s (%v)", b, err)
	}
	m := n.Metrics()
	if st := m.Stats("capture"); st.Delivered != 1 {
		t.Errorf("capture %+v", st)
	}
	if st := m.Stats("slow"); st.Failed != 1 {
		t.Errorf("slow %+v", st)
	}
	if st := m.Stats("failing"); st.Failed != 1 {
		t.Errorf("failing %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"smoke ok", "notify exec timed out", "boom", "exit status 3"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestNotifyNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		<-release
	}))
	defer srv.Close()
	defer close(release)
	n := newNotifier(t, Config{QueueSize: 2, Webhooks: []WebhookConfig{{Name: "stuck", URL: srv.URL, Timeout: lifecycle.Duration(time.Minute)}}}, nil)
	start := time.Now()
	queued := 0
	for range 100 {
		queued += n.Notify(sampleEvent())
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("Notify blocked: 100 calls took %v", el)
	}
	// One in flight at most, two queued: the rest are dropped and counted.
	if queued > 3 {
		t.Errorf("queued %d events with queue size 2", queued)
	}
	if st := n.Metrics().Stats("stuck"); st.Dropped != uint64(100-queued) {
		t.Errorf("dropped %d, want %d", st.Dropped, 100-queued)
	}
	// Close with a short deadline returns even though the receiver hangs.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := n.Close(ctx); err == nil {
		t.Error("Close should report the deadline")
	}
	if n.Notify(sampleEvent()) != 0 {
		t.Error("Notify after Close queued an event")
	}
}

func TestMetricsRegister(t *testing.T) {
	n := newNotifier(t, Config{Webhooks: []WebhookConfig{{Name: "a", URL: "http://127.0.0.1:1/"}}}, nil)
	reg := prometheus.NewRegistry()
	if err := n.Metrics().Register(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{"flagsync_notify_deliveries_total", "flagsync_notify_retries_total", "flagsync_notify_dropped_total"} {
		if !names[want] {
			t.Errorf("%s not registered (have %v)", want, names)
		}
	}
	// A second notifier registers on its own registry without clashing.
	if err := newNotifier(t, Config{}, nil).Metrics().Register(prometheus.NewRegistry()); err != nil {
		t.Error(err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Webhooks: []WebhookConfig{{Name: "a", URL: "ftp://x"}}}, "notify.webhooks[0].url"},
		{Config{Webhooks: []WebhookConfig{{URL: "http://x"}}}, "notify.webhooks[0].name: required"},
		{Config{Webhooks: []WebhookConfig{{Name: "a", URL: "http://x", Format: "teams"}}}, "notify.webhooks[0].format"},
		{Config{Webhooks: []WebhookConfig{{Name: "a", URL: "http://x"}}, Exec: []ExecConfig{{Name: "a", Command: []string{"true"}}}}, `"a" used twice`},
		{Config{Exec: []ExecConfig{{Name: "e"}}}, "notify.exec[0].command: required"},
		{Config{Exec: []ExecConfig{{Name: "e", Command: []string{"x"}, Filter: Filter{Kinds: []Kind{"nope"}}}}}, "notify.exec[0].filter.kinds[0]"},
	} {
		if _, err := New(tc.cfg, Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	for attempt := 1; attempt <= 10; attempt++ {
		for range 50 {
			d := backoff(attempt, 10*time.Millisecond, 100*time.Millisecond)
			hi := min(10*time.Millisecond<<(attempt-1), 100*time.Millisecond)
			if d < 10*time.Millisecond || d > hi {
				t.Fatalf("attempt %d: %v outside [10ms, %v]", attempt, d, hi)
			}
		}
	}
}
