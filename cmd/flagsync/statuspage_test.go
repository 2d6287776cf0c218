package main

import (
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
