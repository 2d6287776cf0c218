package ofrep_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagsync/flagsync/ofrep"
	"github.com/flagsync/flagsync/ofrep/ofreptest"
)

// wait bounds how long a test waits for something that should happen at once; it
// only turns a hang into a failure.
const wait = 10 * time.Second

func eventServer(t *testing.T, eo ofrep.EventsOptions, opts ofrep.Options) (*ofrep.Events, *httptest.Server) {
	t.Helper()
	ev := ofrep.NewEvents(eo)
	opts.Events = ev
	h, _ := newHandler(t, opts)
	srv := httptest.NewServer(h)
	t.Cleanup(func() { ev.Close(); srv.Close() })
	return ev, srv
}

// streamURI is what a bulk evaluation advertises (ADR-0008 eventStreams).
func streamURI(t *testing.T, h http.Handler, hdr map[string]string) string {
	t.Helper()
	r := do(t, h, "POST", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"u"}}`, hdr)
	streams, _ := r.body["eventStreams"].([]any)
	if r.status != 200 || len(streams) != 1 {
		t.Fatalf("bulk = %d, eventStreams %v", r.status, r.body["eventStreams"])
	}
	s := streams[0].(map[string]any)
	ep, _ := s["endpoint"].(map[string]any)
	uri, _ := ep["requestUri"].(string)
	if s["type"] != "sse" || !strings.HasPrefix(uri, ofrep.EventStreamPath+"?ticket=") {
		t.Fatalf("eventStreams entry = %v", s)
	}
	return uri
}

func TestEventStreamAnnouncesEachNewRevisionOnce(t *testing.T) {
	ev, srv := eventServer(t, ofrep.EventsOptions{}, ofrep.Options{APIKeys: []string{"k"}})
	uri := streamURI(t, srv.Config.Handler, map[string]string{"X-API-Key": "k"})
	// The advertised URI opens the stream without any header, as EventSource does.
	s := ofreptest.OpenStream(t, srv.Client(), srv.URL+uri, nil)
	if s.Status != 200 || s.Header.Get("Content-Type") != "text/event-stream" || s.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("stream = %d %v", s.Status, s.Header)
	}
	if !ev.Announce("rev-1") {
		t.Fatal("first revision not announced")
	}
	e, err := s.Next(wait)
	if err != nil || e.ID != "rev-1" || e.Data.Type != "refetchEvaluation" || e.Data.ETag != `"rev-1"` || e.Data.LastModified == 0 {
		t.Fatalf("event = %+v, %v", e, err)
	}
	// A publish that changed nothing announces nothing.
	if ev.Announce("rev-1") || ev.Announce("") {
		t.Error("an unchanged revision was announced")
	}
	ev.Announce("rev-2")
	if e, err := s.Next(wait); err != nil || e.ID != "rev-2" {
		t.Fatalf("after rev-2: %+v, %v (a repeated rev-1 would show here)", e, err)
	}
}

func TestEventStreamCredentials(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var clock atomic.Int64
	clock.Store(now.Unix())
	eo := ofrep.EventsOptions{TicketWindow: time.Hour, Now: func() time.Time { return time.Unix(clock.Load(), 0) }}
	_, srv := eventServer(t, eo, ofrep.Options{APIKeys: []string{"k"}})
	h := srv.Config.Handler
	uri := streamURI(t, h, map[string]string{"X-API-Key": "k"})
	status := func(path string, hdr map[string]string) int {
		s := ofreptest.OpenStream(t, srv.Client(), srv.URL+path, hdr)
		defer s.Close()
		return s.Status
	}
	if got := status(ofrep.EventStreamPath, nil); got != 401 {
		t.Errorf("no credentials, no ticket = %d, want 401", got)
	}
	if got := status(ofrep.EventStreamPath, map[string]string{"X-API-Key": "k"}); got != 200 {
		t.Errorf("API key = %d, want 200", got)
	}
	forged := uri[:len(uri)-3] + "AAA"
	if got := status(forged, nil); got != 401 {
		t.Errorf("forged ticket = %d, want 401", got)
	}
	// A ticket opens the stream, never an evaluation.
	ticket := strings.TrimPrefix(uri, ofrep.EventStreamPath)
	if r := do(t, h, "POST", "/ofrep/v1/evaluate/flags"+ticket, "", nil); r.status != 401 {
		t.Errorf("bulk evaluation with a ticket only = %d, want 401", r.status)
	}
	// Same window, same URI: the bulk ETag does not change with every request.
	if again := streamURI(t, h, map[string]string{"X-API-Key": "k"}); again != uri {
		t.Errorf("advertised URI changed within a window: %s then %s", uri, again)
	}
	clock.Add(int64((2 * time.Hour).Seconds()) + 1)
	if got := status(uri, nil); got != 401 {
		t.Errorf("expired ticket = %d, want 401", got)
	}
}

// A client connecting after a change, or reconnecting with an older Last-Event-ID,
// gets the current revision at once; one that already has it gets nothing.
func TestEventStreamCatchUpOnConnect(t *testing.T) {
	ev, srv := eventServer(t, ofrep.EventsOptions{}, ofrep.Options{})
	ev.Announce("rev-5")
	s := ofreptest.OpenStream(t, srv.Client(), srv.URL+ofrep.EventStreamPath, nil)
	if e, err := s.Next(wait); err != nil || e.ID != "rev-5" {
		t.Fatalf("fresh connect: %+v %v", e, err)
	}
	old := ofreptest.OpenStream(t, srv.Client(), srv.URL+ofrep.EventStreamPath, map[string]string{"Last-Event-ID": "rev-4"})
	if e, err := old.Next(wait); err != nil || e.ID != "rev-5" {
		t.Fatalf("reconnect with rev-4: %+v %v", e, err)
	}
	cur := ofreptest.OpenStream(t, srv.Client(), srv.URL+ofrep.EventStreamPath, map[string]string{"Last-Event-ID": "rev-5"})
	ev.Announce("rev-6")
	if e, err := cur.Next(wait); err != nil || e.ID != "rev-6" {
		t.Fatalf("reconnect with rev-5 then rev-6: first event %+v %v (want rev-6 only)", e, err)
	}
}

func TestEventStreamHeartbeat(t *testing.T) {
	_, srv := eventServer(t, ofrep.EventsOptions{Heartbeat: 5 * time.Millisecond}, ofrep.Options{})
	s := ofreptest.OpenStream(t, srv.Client(), srv.URL+ofrep.EventStreamPath, nil)
	select {
	case c := <-s.Comments:
		if c != ": heartbeat" {
			t.Errorf("comment = %q", c)
		}
	case <-time.After(wait):
		t.Fatal("no heartbeat")
	}
}

func TestEventStreamLimitAndClose(t *testing.T) {
	ev, srv := eventServer(t, ofrep.EventsOptions{MaxStreams: 2}, ofrep.Options{})
	a := ofreptest.OpenStream(t, srv.Client(), srv.URL+ofrep.EventStreamPath, nil)
	b := ofreptest.OpenStream(t, srv.Client(), srv.URL+ofrep.EventStreamPath, nil)
	for ev.Streams() < 2 {
		time.Sleep(time.Millisecond)
	}
	r := do(t, srv.Config.Handler, "GET", ofrep.EventStreamPath, "", nil)
	if r.status != 503 || r.header.Get("Retry-After") == "" || !strings.Contains(r.raw, "limit reached (2 open)") {
		t.Errorf("third stream = %d %v %s", r.status, r.header, r.raw)
	}
	// Shutdown: open streams end, new ones are refused.
	ev.Close()
	if !a.Ended(wait) || !b.Ended(wait) {
		t.Fatal("streams still open after Close")
	}
	if r := do(t, srv.Config.Handler, "GET", ofrep.EventStreamPath, "", nil); r.status != 503 {
		t.Errorf("stream after Close = %d", r.status)
	}
}

// A client that stops reading never holds up Announce: its stream is ended once a
// write to it takes longer than WriteLimit, while a reading client keeps getting
// every latest revision.
func TestEventStreamStalledReaderDoesNotBlockPublish(t *testing.T) {
	ev, srv := eventServer(t, ofrep.EventsOptions{WriteLimit: 50 * time.Millisecond}, ofrep.Options{})
	stalled, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	_ = stalled.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(stalled, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", ofrep.EventStreamPath)
	// Read the response head only, then never again.
	if line, err := bufio.NewReader(stalled).ReadString('\n'); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("stalled stream: %q %v", line, err)
	}
	healthy := ofreptest.OpenStream(t, srv.Client(), srv.URL+ofrep.EventStreamPath, nil)
	for ev.Streams() < 2 {
		time.Sleep(time.Millisecond)
	}
	var last atomic.Value
	go func() {
		for e := range healthy.Events {
			last.Store(e.ID)
		}
	}()
	// Large revisions fill the stalled connection's socket buffers quickly.
	pad := strings.Repeat("x", 16<<10)
	final := ""
	for i := 0; i < 100000 && ev.Streams() == 2; i++ {
		final = fmt.Sprintf("rev-%d-%s", i, pad)
		ev.Announce(final)
		if i%64 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if n := ev.Streams(); n != 1 {
		t.Fatalf("%d streams open: the stalled one was never dropped", n)
	}
	final = "rev-final"
	ev.Announce(final)
	deadline := time.Now().Add(wait)
	for last.Load() != final && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := last.Load(); got != final {
		t.Fatalf("healthy stream's last event = %.20v, want %s", got, final)
	}
}

func TestConfigurationAdvertisesEventStreams(t *testing.T) {
	_, srv := eventServer(t, ofrep.EventsOptions{}, ofrep.Options{})
	r := do(t, srv.Config.Handler, "GET", "/ofrep/v1/configuration", "", nil)
	inv := r.body["capabilities"].(map[string]any)["cacheInvalidation"].(map[string]any)
	es, _ := inv["eventStreams"].(map[string]any)
	if es["enabled"] != true || fmt.Sprint(es["types"]) != "[sse]" {
		t.Errorf("cacheInvalidation = %v", inv)
	}
	plain, _ := newHandler(t, ofrep.Options{})
	r = do(t, plain, "GET", "/ofrep/v1/configuration", "", nil)
	if _, ok := r.body["capabilities"].(map[string]any)["cacheInvalidation"].(map[string]any)["eventStreams"]; ok {
		t.Error("a handler without Events advertises event streams")
	}
}

// Bulk evaluation keeps ETag / If-None-Match with the eventStreams entry in the body.
func TestBulkETagWithEventStreams(t *testing.T) {
	_, srv := eventServer(t, ofrep.EventsOptions{}, ofrep.Options{})
	h := srv.Config.Handler
	body := `{"context":{"targetingKey":"u"}}`
	first := do(t, h, "POST", "/ofrep/v1/evaluate/flags", body, nil)
	etag := first.header.Get("ETag")
	if first.status != 200 || etag == "" {
		t.Fatalf("bulk = %d etag %q", first.status, etag)
	}
	if r := do(t, h, "POST", "/ofrep/v1/evaluate/flags", body, map[string]string{"If-None-Match": etag}); r.status != 304 {
		t.Errorf("If-None-Match = %d, want 304", r.status)
	}
}

// A refetch naming a revision this server does not serve yet (the event came from a
// replica that published first) waits for it instead of answering the old flags;
// one naming a revision that never comes is answered after RefetchWait.
func TestRefetchWaitsForTheAnnouncedRevision(t *testing.T) {
	ev := ofrep.NewEvents(ofrep.EventsOptions{RefetchWait: time.Minute})
	h, cur := newHandler(t, ofrep.Options{Events: ev})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer ev.Close()
	ev.Announce(cur.Load().Revision())
	bulk := func(etag string) chan map[string]any {
		got := make(chan map[string]any, 1)
		go func() {
			resp, err := srv.Client().Post(srv.URL+"/ofrep/v1/evaluate/flags?flagConfigEtag="+etag, "application/json", strings.NewReader(`{"context":{"targetingKey":"u"}}`))
			if err != nil {
				got <- map[string]any{"error": err.Error()}
				return
			}
			defer resp.Body.Close()
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			got <- body
		}()
		return got
	}
	limit := func(body map[string]any) any {
		flags, _ := body["flags"].([]any)
		for _, f := range flags {
			if m := f.(map[string]any); m["key"] == "limit" {
				return m["value"]
			}
		}
		return body
	}
	pending := bulk(url.QueryEscape(`"rev-2"`))
	time.Sleep(100 * time.Millisecond) // an answer not held back would arrive now, with rev-1's flags
	cur.Store(loadSet(t, strings.Replace(strings.Replace(testFlags, `"defaultVariant": "low"`, `"defaultVariant": "high"`, 1), "rev-1", "rev-2", 1)))
	ev.Announce("rev-2")
	select {
	case body := <-pending:
		if v := limit(body); v != float64(100) {
			t.Fatalf("refetch for rev-2 answered limit = %v, want rev-2's 100", v)
		}
	case <-time.After(wait):
		t.Fatal("refetch still waiting after rev-2 was announced")
	}

	short := ofrep.NewEvents(ofrep.EventsOptions{RefetchWait: 20 * time.Millisecond})
	h2, _ := newHandler(t, ofrep.Options{Events: short})
	r := do(t, h2, "POST", "/ofrep/v1/evaluate/flags?flagConfigEtag=never", "", nil)
	if r.status != 200 || limit(r.body) != float64(3) {
		t.Errorf("refetch for a revision that never comes = %d, limit %v", r.status, limit(r.body))
	}
}
