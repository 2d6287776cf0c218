package statuspage_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/statuspage"
	"github.com/flagsync/flagsync/statuspage/statuspagetest"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

const doc = `{
  "flags": {
    "new_dashboard": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
      "targeting": {"if": [{"in": [{"var": "email"}, ["a@example.com"]]}, "on", "off"]},
      "metadata": {"owner": "team-web", "source": "git-flags", "description": "Redesigned dashboard",
        "expiresAt": "2026-12-01T00:00:00Z"}},
    "old_checkout": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
      "metadata": {"owner": "team-checkout", "source": "ssm-prod", "expiresAt": "2026-01-01T00:00:00Z"}},
    "button_color": {"state": "ENABLED", "variants": {"blue": "#1f6feb", "green": "#2da44e"}, "defaultVariant": "blue",
      "metadata": {"owner": "<script>alert('x')</script>", "source": "consul", "expiresAt": "2027-06-30T00:00:00Z",
        "description": "Checkout colour <b>experiment</b>"}}
  },
  "metadata": {"flagSetId": "shop", "flagsync.generation": 42}
}`

func testState(t testing.TB) (*flagset.Set, statuspage.Data) {
	t.Helper()
	set, problems, err := flagset.Load([]byte(doc))
	if err != nil || len(problems) > 0 {
		t.Fatalf("load: %v %v", err, problems)
	}
	return set, statuspage.Data{
		FlagSetID:   "shop",
		Version:     "test",
		Leader:      "leader",
		Fence:       7,
		LastSync:    now.Add(-4 * time.Second),
		LastPublish: now.Add(-90 * time.Second),
		SyncErrors:  []string{`consul flagsync/shop/bad: invalid JSON <img src=x onerror=alert(1)>`},
		Sources: []statuspage.Source{
			{Name: "git-flags", Type: "file", LastSuccess: now.Add(-4 * time.Second), Flags: 1},
			{Name: "ssm-prod", Type: "ssm", LastSuccess: now.Add(-4 * time.Second), APICalls: 1234, Flags: 1},
			{Name: "consul", Type: "consul", LastSuccess: now.Add(-10 * time.Minute), LastError: "connection refused",
				LastErrorAt: now.Add(-4 * time.Second), APICalls: 77, Flags: 1},
		},
		Outputs: []statuspage.Output{
			{Name: "file", Target: "/var/run/flagsync/flags.json", UpToDate: true, LastSuccess: now.Add(-90 * time.Second)},
			{Name: "redis", Target: "redis://:***@redis:6379/0 prefix flagsync:shop", LastSuccess: now.Add(-time.Hour),
				LastError: "dial tcp: connection refused", LastErrorAt: now.Add(-4 * time.Second)},
		},
		Now: now,
	}
}

func render(t *testing.T, set *flagset.Set, d statuspage.Data) string {
	t.Helper()
	var buf bytes.Buffer
	if err := statuspage.Render(&buf, set, d); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestRenderEscapes(t *testing.T) {
	set, d := testState(t)
	html := render(t, set, d)
	for _, bad := range []string{"<script>", "<img src=x", "<b>experiment</b>"} {
		if strings.Contains(html, bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;", "&lt;b&gt;experiment&lt;/b&gt;"} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks escaped %q", want)
		}
	}
}

func TestRenderContent(t *testing.T) {
	set, d := testState(t)
	html := render(t, set, d)
	for _, want := range []string{
		`<meta http-equiv="refresh" content="10">`,
		"flagsync · shop", "generation <b>42</b>", "1m30s ago", "role <b>leader</b> (fence 7)",
		`id="flag-new_dashboard"`, `id="flag-old_checkout"`, `id="flag-button_color"`,
		`<span class="pill soon" title="soon">2026-12-01T00:00:00Z</span>`,
		`<span class="pill expired" title="expired">2026-01-01T00:00:00Z</span>`,
		"connection refused", "1234", "team-checkout", "ssm-prod",
		"publish redis: dial tcp: connection refused", "/var/run/flagsync/flags.json", "up to date", "behind", "1h00m ago",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The far expiry is not highlighted.
	if strings.Contains(html, `pill soon" title="soon">2027-06-30`) || strings.Contains(html, `expired" title="expired">2027`) {
		t.Error("2027 expiry highlighted")
	}
}

func TestRenderWithoutSnapshot(t *testing.T) {
	html := render(t, nil, statuspage.Data{Now: now})
	for _, want := range []string{`id="no-snapshot"`, "No flags.", "No sources reported.", "No outputs reported.", "last publish <b>never</b>", "No errors in the last sync"} {
		if !strings.Contains(html, want) {
			t.Errorf("empty page lacks %q", want)
		}
	}
}

func TestHandler(t *testing.T) {
	set, d := testState(t)
	h := statuspage.Handler(func() (*flagset.Set, statuspage.Data) { return set, d })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") ||
		!strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'none'") ||
		!strings.Contains(rec.Body.String(), "new_dashboard") {
		t.Fatalf("GET /: %d %v", rec.Code, rec.Header())
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/other", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("GET /other: %d", rec.Code)
	}
}

// TestChromium renders the page in a real headless browser: the DOM it builds must
// hold the content (and no script element from the hostile owner), and a screenshot
// goes to var/test-artifacts/statuspage.png for humans.
func TestChromium(t *testing.T) {
	browser := statuspagetest.NewBrowser(t)
	set, d := testState(t)
	srv := httptest.NewServer(statuspage.Handler(func() (*flagset.Set, statuspage.Data) { return set, d }))
	t.Cleanup(srv.Close)

	page := browser.DOM(srv.URL + "/")
	for _, want := range []string{"new_dashboard", "old_checkout", "button_color", "connection refused",
		`class="pill soon"`, `class="pill expired"`, "&lt;script&gt;alert"} {
		if !strings.Contains(page, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if strings.Count(page, "<script") != 0 {
		t.Errorf("rendered DOM contains a script element:\n%s", page)
	}
	browser.Screenshot(srv.URL+"/", filepath.Join("..", "var", "test-artifacts", "statuspage.png"))
}

func TestRenderRedactsSecretFlags(t *testing.T) {
	set, d := testState(t)
	d.Secret = func(key string) bool { return key == "button_color" }
	html := render(t, set, d)
	for _, leaked := range []string{"#1f6feb", "blue, green", "Checkout colour"} {
		if strings.Contains(html, leaked) {
			t.Errorf("page shows %q of a secret flag", leaked)
		}
	}
	if !strings.Contains(html, statuspage.Redacted) || !strings.Contains(html, `id="flag-button_color"`) || !strings.Contains(html, "off, on") {
		t.Errorf("the secret flag is not listed redacted next to the others")
	}
}
