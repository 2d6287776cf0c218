package daemon

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// Tokens of the test harness (its lookup serves them as READ_TOKEN and ADMIN_TOKEN).
const (
	testReadToken  = "read-token-0123456789abcdef"
	testAdminToken = "admin-token-0123456789abcdef"
	authExtra      = "http:\n  auth: {read: {env: [READ_TOKEN]}, admin: {env: [ADMIN_TOKEN]}}\n"
)

// get calls path as an admin would: admin token, JSON body.
func get(t *testing.T, srv *httptest.Server, method, path string) (int, string) {
	t.Helper()
	return call(t, srv, method, path, map[string]string{"Authorization": "Bearer " + testAdminToken, "Content-Type": "application/json"})
}

func call(t *testing.T, srv *httptest.Server, method, path string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp.StatusCode, "" // a stream: served, and its body never ends
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPEndpoints(t *testing.T) {
	h := newHarness(t, hopts{extra: authExtra})
	s := NewServer(h.metrics)
	srv := httptest.NewServer(s)
	defer srv.Close()
	if code, _ := get(t, srv, "GET", "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz before any daemon = %d", code)
	}
	s.Set(h.d)
	if code, body := get(t, srv, "GET", "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("healthz = %d %q", code, body)
	}
	if code, _ := get(t, srv, "GET", "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz before a publish = %d", code)
	}
	if code, _ := get(t, srv, "GET", "/api/v1/snapshot"); code != http.StatusServiceUnavailable {
		t.Errorf("snapshot before a publish = %d", code)
	}
	code, body := get(t, srv, "POST", "/api/v1/sync")
	if code != 200 || !strings.Contains(body, `"result": "published"`) {
		t.Fatalf("sync = %d %s", code, body)
	}
	if code, _ := get(t, srv, "GET", "/readyz"); code != 200 {
		t.Errorf("readyz after a publish = %d", code)
	}
	code, body = get(t, srv, "GET", "/api/v1/snapshot")
	file, _ := os.ReadFile(h.out)
	if code != 200 || body != string(file) {
		t.Errorf("snapshot = %d, differs from the file", code)
	}
	code, body = get(t, srv, "GET", "/api/v1/status")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 200 || st.Flags != 3 || !st.Ready || len(st.Sources) != 1 || st.LastSync == nil {
		t.Errorf("status = %d %s (%v)", code, body, err)
	}
	code, body = get(t, srv, "GET", "/metrics")
	for _, m := range []string{"flagsync_sync_duration_seconds_bucket", "flagsync_publishes_total{output=\"file\"} 1",
		"flagsync_flags_published 3", "flagsync_source_last_success_timestamp_seconds{source=\"git\"}", "flagsync_guard_trips_total 0"} {
		if !strings.Contains(body, m) {
			t.Errorf("metrics miss %q", m)
		}
	}
	if code != 200 {
		t.Errorf("metrics = %d", code)
	}
	// A guard trip through the API answers 409; force=true publishes.
	h.writeFlags("flags: {}\n")
	if code, body := get(t, srv, "POST", "/api/v1/sync"); code != http.StatusConflict || !strings.Contains(body, "guard") {
		t.Errorf("guarded sync = %d %s", code, body)
	}
	if code, body := get(t, srv, "POST", "/api/v1/sync?force=true"); code != 200 || !strings.Contains(body, `"flags": 0`) {
		t.Errorf("forced sync = %d %s", code, body)
	}
	if code, _ := get(t, srv, "GET", "/api/v1/sync"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET sync = %d", code)
	}
}
