package daemon

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/flagsync/flagsync/ofrep"
	"github.com/flagsync/flagsync/ofrep/ofreptest"
)

// eventWait only turns a hang into a failure.
const eventWait = 10 * time.Second

// bulkStreamURI evaluates every flag with hdr and returns the advertised event
// stream request URI (ADR-0008 eventStreams[0].endpoint.requestUri).
func bulkStreamURI(t *testing.T, srv *httptest.Server, hdr map[string]string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+"/ofrep/v1/evaluate/flags", strings.NewReader(`{"context":{"targetingKey":"u"}}`))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		EventStreams []struct {
			Type     string `json:"type"`
			Endpoint struct {
				RequestURI string `json:"requestUri"`
			} `json:"endpoint"`
		} `json:"eventStreams"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 || len(body.EventStreams) != 1 || body.EventStreams[0].Type != "sse" {
		t.Fatalf("bulk = %d %+v %v", resp.StatusCode, body, err)
	}
	return body.EventStreams[0].Endpoint.RequestURI
}

// The daemon announces on its OFREP event stream each publish that changes the flag
// set, and nothing for a sync that changed nothing.
func TestOFREPEventStreamAnnouncesPublishes(t *testing.T) {
	h, _, srv := authServer(t, authExtra)
	read := map[string]string{"Authorization": "Bearer " + testReadToken}
	uri := bulkStreamURI(t, srv, read)
	// No header: the ticket in the advertised URI is the credential, as for a
	// browser's EventSource.
	s := ofreptest.OpenStream(t, srv.Client(), srv.URL+uri, nil)
	if s.Status != 200 {
		t.Fatalf("stream with the advertised ticket = %d", s.Status)
	}
	first := h.d.FlagSet().Revision()
	if e, err := s.Next(eventWait); err != nil || e.ID != first || e.Data.Type != "refetchEvaluation" {
		t.Fatalf("on connect: %+v %v (want the current revision %s)", e, err, first)
	}
	if rep := h.mustSync(); rep.Result != "unchanged" {
		t.Fatalf("second sync = %s", rep.Result)
	}
	h.writeFlags(flagYAML("a", "b", "c", "d"))
	h.mustSync()
	second := h.d.FlagSet().Revision()
	if second == first {
		t.Fatal("the change did not change the revision")
	}
	// The next event is the change: the unchanged sync sent none.
	if e, err := s.Next(eventWait); err != nil || e.ID != second || e.Data.ETag != strconv.Quote(second) {
		t.Fatalf("after the change: %+v %v (want %s)", e, err, second)
	}
}

func TestOFREPEventStreamCredentials(t *testing.T) {
	_, _, srv := authServer(t, authExtra)
	uri := bulkStreamURI(t, srv, map[string]string{"Authorization": "Bearer " + testReadToken})
	ticket := strings.TrimPrefix(uri, ofrep.EventStreamPath)
	for _, tc := range []struct {
		name, path string
		hdr        map[string]string
		want       int
	}{
		{"nothing", ofrep.EventStreamPath, nil, 401},
		{"wrong token", ofrep.EventStreamPath, map[string]string{"Authorization": "Bearer wrong-token-0123456789abcdef"}, 403},
		{"read token", ofrep.EventStreamPath, map[string]string{"Authorization": "Bearer " + testReadToken}, 200},
		{"ticket", uri, nil, 200},
		{"forged ticket", ofrep.EventStreamPath + "?ticket=4102444800.AAAAAAAAAAAAAAAAAAAAAAAA", nil, 401},
	} {
		s := ofreptest.OpenStream(t, srv.Client(), srv.URL+tc.path, tc.hdr)
		if s.Status != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, s.Status, tc.want)
		}
		s.Close()
	}
	// A ticket opens the stream only.
	if code, _ := call(t, srv, "POST", "/ofrep/v1/evaluate/flags"+ticket, nil); code != 401 {
		t.Errorf("evaluation with a ticket only = %d, want 401", code)
	}
}

// A stream outlives the server's request timeouts, and Shutdown ends open streams
// instead of waiting for them until its deadline.
func TestOFREPEventStreamsEndOnShutdown(t *testing.T) {
	h := newHarness(t, hopts{})
	s := NewServer(h.metrics)
	s.Set(h.d)
	h.mustSync()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Short request timeouts: a stream must outlive them (it is bounded per event).
	hc := h.d.cfg.HTTP
	hc.Limits.ReadTimeout, hc.Limits.WriteTimeout = 50*time.Millisecond, 50*time.Millisecond
	hs := NewHTTPServer(&hc, s, slog.New(slog.DiscardHandler))
	go func() { _ = hs.Serve(ln) }()
	stream := ofreptest.OpenStream(t, http.DefaultClient, "http://"+ln.Addr().String()+ofrep.EventStreamPath, nil)
	if stream.Status != 200 {
		t.Fatalf("stream = %d", stream.Status)
	}
	if _, err := stream.Next(eventWait); err != nil { // the current revision, on connect
		t.Fatal(err)
	}
	time.Sleep(4 * hc.Limits.WriteTimeout)
	h.writeFlags(flagYAML("a", "b", "c", "z"))
	h.mustSync()
	if e, err := stream.Next(eventWait); err != nil || e.ID != h.d.FlagSet().Revision() {
		t.Fatalf("event after the server's request timeouts passed: %+v %v", e, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*eventWait)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with an open stream: %v", err)
	}
	if !stream.Ended(eventWait) {
		t.Error("stream still open after Shutdown")
	}
}

// Load beyond http.ofrep.rateLimit is shed with 429 and a Retry-After in seconds
// (OFREP), on every evaluation endpoint.
func TestOFREPShedsLoadWith429(t *testing.T) {
	h, _, srv := authServer(t, "http:\n  ofrep: {rateLimit: 2, rateBurst: 2}\n")
	const clients = 40
	type result struct {
		code       int
		retryAfter string
		body       string
	}
	results := make(chan result, clients)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			path := "/ofrep/v1/evaluate/flags"
			if i%2 == 1 {
				path += "/a"
			}
			req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(`{"context":{"targetingKey":"u"}}`))
			resp, err := srv.Client().Do(req)
			if err != nil {
				results <- result{code: -1, body: err.Error()}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- result{resp.StatusCode, resp.Header.Get("Retry-After"), string(b)}
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	served, shed := 0, 0
	for r := range results {
		switch r.code {
		case 200:
			served++
		case 429:
			shed++
			secs, err := strconv.Atoi(r.retryAfter)
			if err != nil || secs < 1 || !strings.Contains(r.body, `"errorDetails"`) {
				t.Errorf("429 with Retry-After %q, body %s", r.retryAfter, r.body)
			}
		default:
			t.Errorf("unexpected answer %d %s", r.code, r.body)
		}
	}
	if served == 0 || shed == 0 {
		t.Fatalf("%d served, %d shed of %d concurrent requests over a limit of 2/s", served, shed, clients)
	}
	var pb dto.Metric
	if err := h.metrics.OFREPShed.Write(&pb); err != nil || int(pb.Counter.GetValue()) != shed {
		got := pb.Counter.GetValue()
		t.Errorf("flagsync_ofrep_shed_total = %v, want %d", got, shed)
	}
	t.Logf("%d served, %d shed with 429", served, shed)
}

// A negative maxEventStreams is refused with the key's name.
func TestOFREPMaxEventStreamsConfig(t *testing.T) {
	_, err := ParseConfig([]byte("flagSetId: x\nsources:\n  - {name: f, type: file, path: /dev/null}\noutputs:\n  file: {path: /tmp/x.json}\nhttp:\n  ofrep: {maxEventStreams: -1}\n"), lookupFrom(nil))
	if err == nil || !strings.Contains(err.Error(), "http.ofrep.maxEventStreams") {
		t.Errorf("maxEventStreams -1: %v", err)
	}
}

// A configuration reload keeps the streams open and, serving the same flags, sends
// nothing; the new daemon's first change is announced.
func TestOFREPEventStreamAcrossReload(t *testing.T) {
	h := newReloadHarness(t)
	a := h.first()
	s := NewServer(h.metrics)
	s.Set(a)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close) // after the stream's own cleanup: Close waits for open requests
	stream := ofreptest.OpenStream(t, srv.Client(), srv.URL+ofrep.EventStreamPath, nil)
	first := a.FlagSet().Revision()
	if e, err := stream.Next(eventWait); err != nil || e.ID != first {
		t.Fatalf("on connect: %+v %v", e, err)
	}
	b := h.build(h.config(""), hopts{})
	s.Set(b)
	if rep, err := b.Sync(context.Background(), false); err != nil || b.FlagSet().Revision() != first {
		t.Fatalf("new daemon's first sync: %+v %v", rep, err)
	}
	h.writeFlags(flagYAML("a", "b", "c"))
	if _, err := b.Sync(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	second := b.FlagSet().Revision()
	if e, err := stream.Next(eventWait); err != nil || e.ID != second || second == first {
		t.Fatalf("after the reload and a change: %+v %v (want %s, not a repeat of %s)", e, err, second, first)
	}
}

// http.ofrep.maxEventStreams bounds the open streams: one more is answered 503 with
// Retry-After and says why; flagsync_ofrep_event_streams counts the open ones.
func TestOFREPMaxEventStreams(t *testing.T) {
	_, _, srv := authServer(t, "http:\n  auth: {read: {env: [READ_TOKEN]}}\n  ofrep: {maxEventStreams: 1}\n")
	read := map[string]string{"Authorization": "Bearer " + testReadToken}
	first := ofreptest.OpenStream(t, srv.Client(), srv.URL+ofrep.EventStreamPath, read)
	if first.Status != 200 {
		t.Fatalf("first stream = %d", first.Status)
	}
	if _, err := first.Next(eventWait); err != nil { // connected: the current revision
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", srv.URL+ofrep.EventStreamPath, nil)
	req.Header.Set("Authorization", "Bearer "+testReadToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "event stream limit reached (1 open)") {
		t.Errorf("second stream = %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if _, metrics := call(t, srv, "GET", "/metrics", read); !strings.Contains(metrics, "\nflagsync_ofrep_event_streams 1\n") {
		t.Errorf("flagsync_ofrep_event_streams is not 1:\n%s", grepLines(metrics, "flagsync_ofrep"))
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A rate limit whose burst cannot take one refetch per event stream is warned about
// at start: those refetches would be shed and their clients left on the old flags.
func TestOFREPWarnsBurstBelowStreams(t *testing.T) {
	const warning = "rateBurst is below maxEventStreams"
	low, _, _ := authServer(t, "http:\n  ofrep: {rateLimit: 100, maxEventStreams: 200}\n")
	if !strings.Contains(low.logs.String(), warning) {
		t.Errorf("no warning for burst 100 < 200 streams:\n%s", low.logs.String())
	}
	ok, _, _ := authServer(t, "http:\n  ofrep: {rateLimit: 100, rateBurst: 200, maxEventStreams: 200}\n")
	if strings.Contains(ok.logs.String(), warning) {
		t.Errorf("warning although the burst covers every stream")
	}
}
