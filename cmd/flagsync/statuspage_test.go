package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/statuspage/statuspagetest"
)

// TestStatusPageChromium renders the status page of a running built daemon in a real
// headless browser: its flags, sources and outputs, and a screenshot for humans in
// var/test-artifacts/.
func TestStatusPageChromium(t *testing.T) {
	browser := statuspagetest.NewBrowser(t)
	e := newE2E(t, buildFlagsync(t), false, "")
	e.writeFlags(flagDoc("checkout_v2", "dark_mode", "search_beta"))
	p := e.start("FLAG_OPS_KILL=true")
	p.waitReady()
	page := browser.DOM(p.http + "/")
	for _, want := range []string{"checkout_v2", "dark_mode", "search_beta", ">git<", ">ops<", e.out, "e2e"} {
		if !strings.Contains(page, want) {
			t.Errorf("rendered status page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") {
		t.Errorf("status page contains a script element")
	}
	browser.Screenshot(p.http+"/", filepath.Join("..", "..", "var", "test-artifacts", "statuspage-daemon.png"))
}

// TestStatusPageChromiumWithToken opens the status page of a daemon with http.auth in
// a real headless Chromium: without credentials the browser shows no flag, with the admin
// token (Basic auth, the token as password) the page, and the token appears in
// neither the page, the daemon's log nor its metrics.
func TestStatusPageChromiumWithToken(t *testing.T) {
	const readToken, adminToken = "chromium-read-token-7a1c93e0", "chromium-admin-token-52fd81b4"
	browser := statuspagetest.NewBrowser(t)
	e := newE2E(t, buildFlagsync(t), false, "")
	e.writeFlags(flagDoc("checkout_v2", "dark_mode"))
	e.writeConfig(strings.Replace(mustRead(t, e.config), "http: {listen:", "http: {auth: {read: {env: [FS_READ]}, admin: {env: [FS_ADMIN]}}, listen:", 1))
	p := e.start("FS_READ="+readToken, "FS_ADMIN="+adminToken)
	p.waitReady()
	host := strings.TrimPrefix(p.http, "http://")
	denied := browser.DOM(p.http + "/")
	if strings.Contains(denied, "checkout_v2") || strings.Contains(denied, "dark_mode") {
		t.Errorf("status page without credentials:\n%s", denied)
	}
	page := browser.DOM("http://admin:" + adminToken + "@" + host + "/")
	for _, want := range []string{"checkout_v2", "dark_mode", ">git<"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page with the admin token lacks %q", want)
		}
	}
	metrics := httpGet(t, p.http+"/metrics", readToken)
	for what, text := range map[string]string{"page": page, "log": p.out.String(), "metrics": metrics} {
		for _, tok := range []string{readToken, adminToken} {
			if strings.Contains(text, tok) {
				t.Errorf("a token appears in the %s", what)
			}
		}
	}
	browser.Screenshot("http://admin:"+adminToken+"@"+host+"/", filepath.Join("..", "..", "var", "test-artifacts", "statuspage-token.png"))
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
