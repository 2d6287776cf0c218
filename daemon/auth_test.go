package daemon

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// authServer is a published daemon with read and admin tokens behind an httptest server.
func authServer(t *testing.T, extra string) (*harness, *Server, *httptest.Server) {
	t.Helper()
	h := newHarness(t, hopts{extra: extra})
	s := NewServer(h.metrics)
	s.Set(h.d)
	h.mustSync()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return h, s, srv
}

var patternParam = regexp.MustCompile(`\{[^}]*\}`)

// requestFor turns a route pattern into a method and a path it matches.
func requestFor(pattern string) (string, string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "GET", pattern
	}
	path = strings.ReplaceAll(path, "{$}", "")
	path = patternParam.ReplaceAllString(path, "x")
	if strings.HasSuffix(path, "/") && path != "/" {
		path += "v1/configuration" // a subtree: any path below it
	}
	return method, path
}

// TestRouteTable tries every route the server registers — including routes added
// later by other code — without credentials, with a wrong token, with a read token
// and with an admin token, and fails for a route that has no auth decision.
func TestRouteTable(t *testing.T) {
	_, s, srv := authServer(t, authExtra)
	json := map[string]string{"Content-Type": "application/json"}
	with := func(tok string) map[string]string {
		return map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + tok}
	}
	refused := func(code int) bool { return code == http.StatusUnauthorized || code == http.StatusForbidden }
	routes := s.Routes()
	if len(routes) < 8 {
		t.Fatalf("only %d routes listed: %v", len(routes), routes)
	}
	for _, r := range routes {
		method, path := requestFor(r.Pattern)
		none, _ := call(t, srv, method, path, json)
		wrong, _ := call(t, srv, method, path, with("wrong-token-0123456789abcdef"))
		read, _ := call(t, srv, method, path, with(testReadToken))
		admin, _ := call(t, srv, method, path, with(testAdminToken))
		t.Logf("%-28s %-9s none %d wrong %d read %d admin %d", r.Pattern, r.Access, none, wrong, read, admin)
		switch r.Access {
		case "open":
			if refused(none) || refused(wrong) {
				t.Errorf("%s is open but refused a caller: %d %d", r.Pattern, none, wrong)
			}
		case "read", "metrics", "ofrep", "ofrep-stream":
			if none != http.StatusUnauthorized || wrong != http.StatusForbidden || refused(read) || refused(admin) {
				t.Errorf("%s (%s): none %d (want 401), wrong %d (want 403), read %d, admin %d (want served)", r.Pattern, r.Access, none, wrong, read, admin)
			}
		case "admin":
			if none != http.StatusUnauthorized || wrong != http.StatusForbidden || read != http.StatusForbidden || refused(admin) {
				t.Errorf("%s (admin): none %d (want 401), wrong %d, read %d (want 403), admin %d (want served)", r.Pattern, none, wrong, read, admin)
			}
		default:
			t.Errorf("route %s has no auth decision (%s): register it with handle(pattern, access, h)", r.Pattern, r.Access)
		}
	}
}

// A route added the plain http.ServeMux way has no decision: it is refused, even to
// an admin, and listed as undecided.
func TestUndecidedRouteIsRefused(t *testing.T) {
	_, s, srv := authServer(t, authExtra)
	served := false
	s.mux.HandleFunc("POST /api/v1/new-thing", func(w http.ResponseWriter, r *http.Request) { served = true })
	code, body := get(t, srv, "POST", "/api/v1/new-thing")
	if code != http.StatusForbidden || served || !strings.Contains(body, "no auth decision") {
		t.Errorf("undecided route = %d %q (served %v)", code, body, served)
	}
	found := false
	for _, r := range s.Routes() {
		found = found || (r.Pattern == "POST /api/v1/new-thing" && r.Access == "undecided")
	}
	if !found {
		t.Errorf("undecided route not listed: %v", s.Routes())
	}
}

// Without any token configured, the read routes stay open to the daemon's own names
// (loopback default) and admin routes are refused, whatever is presented.
func TestNoAuthConfigured(t *testing.T) {
	h, _, srv := authServer(t, "")
	for _, path := range []string{"/api/v1/status", "/api/v1/snapshot", "/", "/metrics", "/healthz", "/readyz"} {
		if code, _ := call(t, srv, "GET", path, nil); code != 200 {
			t.Errorf("GET %s without auth configured = %d", path, code)
		}
	}
	// DNS rebinding: a page whose name now resolves to 127.0.0.1 reads nothing.
	for _, path := range []string{"/api/v1/snapshot", "/", "/ofrep/v1/configuration", "/metrics"} {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Host = "evil.example:8080"
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s with a foreign Host on a loopback daemon = %d, want 403", path, resp.StatusCode)
		}
	}
	for _, hdr := range []map[string]string{nil, {"Content-Type": "application/json", "Authorization": "Bearer " + testAdminToken}} {
		if code, body := call(t, srv, "POST", "/api/v1/sync?force=true", hdr); code != http.StatusForbidden || !strings.Contains(body, "http.auth.admin") {
			t.Errorf("POST sync without admin tokens configured = %d %q, want 403", code, body)
		}
	}
	if !strings.Contains(h.logs.String(), "admin routes") {
		t.Errorf("no log line says admin routes are off")
	}
}

// TestAdminCrossSite sends, with a valid admin token (a browser attaches cached Basic
// credentials to cross-site requests), what a page on another site can make a browser
// send: every such request is refused, a same-origin JSON request is not.
func TestAdminCrossSite(t *testing.T) {
	_, _, srv := authServer(t, authExtra)
	self := srv.URL // http://127.0.0.1:port
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	basic := "Basic " + basicAuth("admin", testAdminToken)
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		host string
		want int
	}{
		{"form post from another site", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"}, "", 403},
		{"form post, no Origin", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "", 415},
		{"multipart form", map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, "", 415},
		{"text/plain (fetch no-cors)", map[string]string{"Content-Type": "text/plain;charset=UTF-8"}, "", 415},
		{"no body type (fetch without body)", map[string]string{}, "", 415},
		{"JSON from another origin", map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example"}, "", 403},
		{"JSON from an opaque origin", map[string]string{"Content-Type": "application/json", "Origin": "null"}, "", 403},
		{"Sec-Fetch-Site cross-site", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, "", 403},
		{"DNS rebinding (Host is the attacker's name)", map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example:" + port}, "evil.example:" + port, 403},
		{"DNS rebinding, no Origin", map[string]string{"Content-Type": "application/json"}, "evil.example:" + port, 403},
		{"same origin JSON", map[string]string{"Content-Type": "application/json", "Origin": self}, "", 200},
		{"JSON without Origin (curl)", map[string]string{"Content-Type": "application/json; charset=utf-8"}, "", 200},
		{"localhost Host", map[string]string{"Content-Type": "application/json"}, "localhost:" + port, 200},
	} {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/sync", strings.NewReader("{}"))
		for k, v := range tc.hdr {
			req.Header.Set(k, v)
		}
		req.Header.Set("Authorization", basic)
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
}

func TestAllowedHosts(t *testing.T) {
	_, _, srv := authServer(t, authExtra+"  allowedHosts: [flagsync.apps.svc.cluster.local, \"::1\"]\n")
	for host, want := range map[string]int{"flagsync.apps.svc.cluster.local:8080": 200, "FLAGSYNC.apps.svc.cluster.local": 200, "[::1]:8080": 200, "127.0.0.1": 403, "localhost:8080": 403} {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/sync", nil)
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// Credentials in every form a client sends them; none is ever logged.
func TestCredentialFormsAndLogs(t *testing.T) {
	h, _, srv := authServer(t, authExtra+"  ofrep: {apiKeys: [ofrep-key-0123456789]}\n")
	for _, hdr := range []map[string]string{
		{"Authorization": "Bearer " + testReadToken},
		{"Authorization": "bearer  " + testReadToken},
		{"Authorization": "Basic " + basicAuth("", testReadToken)},
		{"X-API-Key": testReadToken},
	} {
		if code, _ := call(t, srv, "GET", "/api/v1/status", hdr); code != 200 {
			t.Errorf("status with %v = %d", hdr, code)
		}
	}
	if code, _ := call(t, srv, "GET", "/api/v1/snapshot", map[string]string{"X-API-Key": "ofrep-key-0123456789"}); code != http.StatusForbidden {
		t.Errorf("snapshot with an OFREP key = %d, want 403", code)
	}
	if code, _ := call(t, srv, "GET", "/ofrep/v1/configuration", map[string]string{"X-API-Key": "ofrep-key-0123456789"}); code != 200 {
		t.Errorf("OFREP with its key = %d", code)
	}
	for _, bad := range []string{"Bearer wrong-secret-candidate-1", "Basic " + basicAuth("u", "wrong-secret-candidate-2")} {
		call(t, srv, "GET", "/", map[string]string{"Authorization": bad})
	}
	code, _ := call(t, srv, "GET", "/", nil)
	if code != http.StatusUnauthorized {
		t.Errorf("page without credentials = %d", code)
	}
	logs := h.logs.String()
	for _, secret := range []string{testReadToken, testAdminToken, "wrong-secret-candidate", "ofrep-key-0123456789"} {
		if strings.Contains(logs, secret) {
			t.Errorf("a credential appears in the log: %s", secret)
		}
	}
	if !strings.Contains(logs, "http request refused") {
		t.Errorf("refusals are not logged at debug")
	}
	_, metrics := call(t, srv, "GET", "/metrics", map[string]string{"Authorization": "Bearer " + testReadToken})
	for _, secret := range []string{testReadToken, testAdminToken, "ofrep-key", "wrong-secret-candidate"} {
		if strings.Contains(metrics, secret) {
			t.Errorf("a credential appears in a metric")
		}
	}
	for _, want := range []string{`flagsync_http_refused_total{code="401",route="GET /{$}"} 1`, `flagsync_http_refused_total{code="403",route="GET /{$}"} 2`,
		`flagsync_http_refused_total{code="403",route="GET /api/v1/snapshot"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestOpenMetrics(t *testing.T) {
	_, _, srv := authServer(t, "http:\n  auth: {read: {env: [READ_TOKEN]}, openMetrics: true}\n")
	if code, _ := call(t, srv, "GET", "/metrics", nil); code != 200 {
		t.Errorf("metrics with openMetrics = %d", code)
	}
	if code, _ := call(t, srv, "GET", "/api/v1/status", nil); code != http.StatusUnauthorized {
		t.Errorf("status with openMetrics = %d, want 401", code)
	}
}

// Token files: several tokens, comments, rotation picked up without a restart, and a
// broken rewrite that keeps the previous tokens.
func TestTokenFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "admin")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("# current and next\nold-admin-token-0123456789\n\nnew-admin-token-0123456789\n")
	cfg, err := ParseConfig([]byte(fmt.Sprintf("flagSetId: t\nsources: [{name: e, type: env}]\noutputs: {file: {path: x}}\nhttp:\n  auth: {admin: {files: [%q]}}\n", file)), lookupFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := cfg.HTTP.policy()
	now := time.Now()
	try := func(tok string, at time.Time) int {
		r := httptest.NewRequest("POST", "http://127.0.0.1/api/v1/sync", nil)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+tok)
		d, _ := p.authorize(r, accessAdmin, at)
		return d.code
	}
	if try("old-admin-token-0123456789", now) != 0 || try("new-admin-token-0123456789", now) != 0 || try("# current and next", now) == 0 {
		t.Fatal("token file not read as one token per line")
	}
	write("new-admin-token-0123456789\nthird-admin-token-0123456789\n")
	later := now.Add(2 * fileCheckInterval)
	if try("old-admin-token-0123456789", later) == 0 || try("third-admin-token-0123456789", later) != 0 {
		t.Error("rotated token file not picked up")
	}
	write("tiny\n")
	r := httptest.NewRequest("POST", "http://127.0.0.1/api/v1/sync", nil)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer third-admin-token-0123456789")
	d, errs := p.authorize(r, accessAdmin, later.Add(2*fileCheckInterval))
	if d.code != 0 || len(errs) != 1 || strings.Contains(errs[0].Error(), "tiny") {
		t.Errorf("a broken rewrite: code %d errs %v (want the previous tokens kept, one error not quoting the file)", d.code, errs)
	}
}

func TestHTTPConfigErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("# nothing\n"), 0o600)
	base := "flagSetId: t\nsources: [{name: e, type: env}]\noutputs: {file: {path: x}}\nhttp:\n"
	env := lookupFrom(map[string]string{"SHORT": "abc", "GOOD": testReadToken})
	for _, tc := range []struct{ http, want string }{
		{"  auth: {read: {env: [MISSING]}}", "http.auth.read.env[0]: environment variable MISSING is not set"},
		{"  auth: {admin: {env: [GOOD, SHORT]}}", "http.auth.admin.env[1]: the token in SHORT is shorter than 16"},
		{"  auth: {admin: {files: [/nonexistent/token]}}", "http.auth.admin.files[0]:"},
		{fmt.Sprintf("  auth: {read: {files: [%q]}}", empty), "http.auth.read.files[0]: holds no token"},
		{"  auth: {read: {tokens: [x]}}", "http.auth.read.tokens: unknown key"},
		{"  allowedHosts: [\"flagsync:8080\"]", "http.allowedHosts[0]"},
		{"  allowedHosts: [\"http://x\"]", "http.allowedHosts[0]"},
		{"  tls: {certFile: /x.pem}", "http.tls: certFile and keyFile are both required"},
		{"  tls: {certFile: /x.pem, keyFile: /y.pem}", "http.tls:"},
		{"  limits: {idleTimeout: -1s}", "http.limits.idleTimeout"},
		{"  limits: {maxConnections: -1}", "http.limits"},
	} {
		_, err := ParseConfig([]byte(base+tc.http+"\n"), env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.http, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "abc") {
			t.Errorf("%s: error quotes a token: %v", tc.http, err)
		}
	}
	c, err := ParseConfig([]byte(base+"  listen: 0.0.0.0:8080\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	if l := c.HTTP.Limits; l.IdleTimeout != DefaultIdleTimeout || l.ReadTimeout != DefaultReadTimeout || l.MaxConnections != DefaultMaxConnections || l.MaxBodyBytes != DefaultMaxBodyBytes {
		t.Errorf("limits defaults = %+v", l)
	}
}

// With no token and a non-loopback listener the daemon warns at start, naming what is
// open; with tokens, or on loopback, it does not.
func TestExposureWarning(t *testing.T) {
	for _, tc := range []struct {
		extra string
		warn  bool
	}{
		{"http: {listen: \"0.0.0.0:8080\"}\n", true},
		{"http: {listen: \"[::]:8080\", auth: {read: {env: [READ_TOKEN]}, openMetrics: true}}\n", true},
		{"http: {listen: \"0.0.0.0:8080\", auth: {read: {env: [READ_TOKEN]}}}\n", false},
		{"http: {listen: \"127.0.0.1:8080\"}\n", false},
		{"http: {listen: \"localhost:8080\"}\n", false},
	} {
		h := newHarness(t, hopts{extra: tc.extra})
		NewServer(h.metrics).Set(h.d)
		logs := h.logs.String()
		warned := strings.Contains(logs, `"level":"WARN","msg":"http: listening beyond loopback`)
		if warned != tc.warn {
			t.Errorf("%s: warned %v, want %v\n%s", tc.extra, warned, tc.warn, logs)
		}
		if tc.warn && !strings.Contains(logs, "GET /metrics") {
			t.Errorf("%s: the warning does not name the open routes", tc.extra)
		}
	}
}

func basicAuth(user, pass string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// A Config not made by ParseConfig whose tokens cannot be read closes every route but
// health instead of opening them.
func TestUnreadableTokensClose(t *testing.T) {
	h := newHarness(t, hopts{})
	cfg := *h.d.Config()
	cfg.HTTP.auth = nil
	cfg.HTTP.Auth.Admin.Env = []string{"FLAGSYNC_TEST_UNSET_TOKEN_VARIABLE"}
	d, err := New(&cfg, Options{Metrics: h.metrics, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := NewServer(h.metrics)
	s.Set(d)
	srv := httptest.NewServer(s)
	defer srv.Close()
	if code, _ := call(t, srv, "GET", "/api/v1/snapshot", nil); code != http.StatusServiceUnavailable {
		t.Errorf("snapshot with unreadable tokens = %d, want 503", code)
	}
	if code, _ := call(t, srv, "GET", "/healthz", nil); code != 200 {
		t.Errorf("healthz = %d", code)
	}
}

// A reload (Set with a new daemon) swaps the tokens: the old admin token stops working.
func TestAuthFollowsReload(t *testing.T) {
	h, s, srv := authServer(t, authExtra)
	if code, _ := get(t, srv, "POST", "/api/v1/sync"); code != 200 {
		t.Fatalf("sync with the admin token = %d", code)
	}
	cfg, err := ParseConfig([]byte(fmt.Sprintf("flagSetId: test\nsources: [{name: git, type: file, path: %q}]\noutputs: {file: {path: %q}}\nhttp:\n  auth: {admin: {env: [NEW_ADMIN]}}\n", h.flags, h.out)),
		lookupFrom(map[string]string{"NEW_ADMIN": "rotated-admin-token-0123456789"}))
	if err != nil {
		t.Fatal(err)
	}
	nd, err := New(cfg, Options{Metrics: h.metrics, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()
	s.Set(nd)
	if code, _ := get(t, srv, "POST", "/api/v1/sync"); code != http.StatusForbidden {
		t.Errorf("old admin token after the reload = %d, want 403", code)
	}
	if code, _ := call(t, srv, "POST", "/api/v1/sync", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer rotated-admin-token-0123456789"}); code != 200 {
		t.Errorf("new admin token after the reload = %d", code)
	}
}
