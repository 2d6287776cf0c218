package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

const staleFlags = `flags:
  old_promo:
    state: ENABLED
    variants: {"on": true, "off": false}
    defaultVariant: "off"
    metadata: {owner: growth, source: "ssm:/flags/prod/old_promo@3", expiresAt: "2026-05-01T00:00:00Z"}
  soon_gone:
    state: ENABLED
    variants: {"on": true, "off": false}
    defaultVariant: "on"
    metadata: {owner: web, expiresAt: "2026-06-25T00:00:00Z"}
  next_year:
    state: ENABLED
    variants: {"on": true, "off": false}
    defaultVariant: "on"
    metadata: {owner: core, expiresAt: "2027-06-01T00:00:00Z"}
  forever:
    state: ENABLED
    variants: {"on": true, "off": false}
    defaultVariant: "on"
`

func TestStaleCommand(t *testing.T) {
	dir := writeFiles(t, map[string]string{"flags.yaml": staleFlags})
	now := "--now=2026-06-15T00:00:00Z"

	code, out, errOut := runCmd(t, dir, "stale", now, "flags.yaml")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "STATUS") ||
		!strings.Contains(lines[1], "expired") || !strings.Contains(lines[1], "old_promo") || !strings.Contains(lines[1], "45d ago") ||
		!strings.Contains(lines[1], "growth") || !strings.Contains(lines[1], "ssm:/flags/prod/old_promo@3") ||
		!strings.Contains(lines[2], "expiring") || !strings.Contains(lines[2], "soon_gone") || !strings.Contains(lines[2], "in 10d") {
		t.Errorf("table:\n%s", out)
	}

	code, out, _ = runCmd(t, dir, "stale", now, "--within=400d", "--json", "flags.yaml")
	var res struct {
		WithinSeconds int64 `json:"withinSeconds"`
		Flags         []struct {
			Flag             string `json:"flag"`
			Status           string `json:"status"`
			Owner            string `json:"owner"`
			RemainingSeconds int64  `json:"remainingSeconds"`
		} `json:"flags"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 {
		t.Fatalf("json: %v %q", err, out)
	}
	if len(res.Flags) != 3 || res.Flags[0].Flag != "old_promo" || res.Flags[0].RemainingSeconds != -45*86400 ||
		res.Flags[2].Flag != "next_year" || res.Flags[2].Status != "expiring" || res.WithinSeconds != 400*86400 {
		t.Errorf("json result %+v", res)
	}

	if code, _, _ := runCmd(t, dir, "stale", now, "--fail", "flags.yaml"); code != 1 {
		t.Errorf("--fail with an expired flag: code %d", code)
	}
	if code, _, _ := runCmd(t, dir, "stale", now, "--grace=60d", "--fail", "flags.yaml"); code != 0 {
		t.Errorf("--fail within grace: code %d", code)
	}
	if code, out, _ := runCmd(t, dir, "stale", "--now=2026-01-01T00:00:00Z", "--within=1d", "flags.yaml"); code != 0 || !strings.Contains(out, "no expired or expiring flags") {
		t.Errorf("nothing stale: %d %q", code, out)
	}
	for _, args := range [][]string{
		{"stale"}, {"stale", "a", "b"}, {"stale", "--within=soon", "flags.yaml"}, {"stale", "--grace=-1d", "flags.yaml"}, {"stale", "missing.yaml"},
	} {
		if code, _, errOut := runCmd(t, dir, args...); code != 2 || errOut == "" {
			t.Errorf("%v: code %d (want 2), stderr %q", args, code, errOut)
		}
	}
}

// TestStaleLiveConfig reads a daemon configuration's sources (a file source here)
// without publishing anything.
func TestStaleLiveConfig(t *testing.T) {
	// The daemon's own cleanup (remove) and notifications must not apply to the
	// one-shot read: expired flags are listed, nothing is sent.
	var hits atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer hook.Close()
	dir := writeFiles(t, map[string]string{
		"flags.yaml": staleFlags,
		"flagsync.yaml": "flagSetId: live\nsources:\n  - {name: git, type: file, path: flags.yaml}\n" +
			"outputs:\n  file: {path: out/flags.json}\ncleanup: {action: remove}\n" +
			"notify: {webhooks: [{name: h, url: \"" + hook.URL + "\"}]}\n",
	})
	code, out, errOut := runCmd(t, dir, "stale", "--now=2026-06-15T00:00:00Z", "--json", "--config", "flagsync.yaml")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errOut)
	}
	if !strings.Contains(out, `"flag": "old_promo"`) || !strings.Contains(out, `"flag": "soon_gone"`) {
		t.Errorf("live result: %s", out)
	}
	if code, _, _ := runCmd(t, dir, "lint", "--now=2026-06-15T00:00:00Z", "--disable=required-metadata,expiry-past", "--config", "flagsync.yaml"); code != 0 {
		t.Errorf("lint --config: code %d", code)
	}
	if _, err := readFile(dir + "/out/flags.json"); err == nil {
		t.Error("--config published a snapshot")
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("--config sent %d notifications", n)
	}
}

// TestStaleConfigSkipsUnusedSecrets: stale and lint --config read only the sources,
// so the variables of the sections they do not use (a notify secret, a Redis URL, the
// http listen address, ha) need not be set where the operator runs them.
func TestStaleConfigSkipsUnusedSecrets(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"flags.yaml": staleFlags,
		"flagsync.yaml": "flagSetId: live\nsources:\n  - {name: git, type: file, path: \"${STALE_TEST_FLAGS_FILE:-flags.yaml}\"}\n" +
			"outputs:\n  redis: {url: \"${STALE_TEST_UNSET_REDIS_URL}\"}\n" +
			"http: {listen: \"${STALE_TEST_UNSET_LISTEN}\"}\n" +
			"notify: {webhooks: [{name: h, url: \"https://hooks.example/x\", secret: \"${STALE_TEST_UNSET_WEBHOOK_SECRET}\"}]}\n",
	})
	code, out, errOut := runCmd(t, dir, "stale", "--now=2026-06-15T00:00:00Z", "--json", "--config", "flagsync.yaml")
	if code != 0 || !strings.Contains(out, `"flag": "old_promo"`) {
		t.Fatalf("stale --config: code %d, out %q, stderr %q", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, dir, "lint", "--now=2026-06-15T00:00:00Z", "--disable=required-metadata,expiry-past,unused-variant", "--config", "flagsync.yaml"); code != 0 {
		t.Errorf("lint --config: code %d, stderr %q", code, errOut)
	}
	// The one-shot read never writes the daemon's guard state (a forced sync would
	// otherwise release its holds and reset its baselines).
	os.WriteFile(filepath.Join(dir, "flagsync.yaml"), []byte("flagSetId: live\nsources:\n  - {name: git, type: file, path: flags.yaml}\n"+
		"guards: {stateFile: state/guards.json}\noutputs: {file: {path: out.json}}\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "state"), 0o755)
	for _, cmd := range []string{"stale", "lint"} {
		if code, _, errOut := runCmd(t, dir, cmd, "--now=2026-06-15T00:00:00Z", "--config", "flagsync.yaml"); code == 2 {
			t.Errorf("%s --config: %s", cmd, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "guards.json")); err == nil {
		t.Error("stale/lint --config wrote the daemon's guard state file")
	}
	// A variable the sources do use is still required, by name.
	os.WriteFile(filepath.Join(dir, "flagsync.yaml"), []byte("flagSetId: live\nsources:\n  - {name: git, type: file, path: \"${STALE_TEST_UNSET_FLAGS_PATH}\"}\n"+
		"outputs: {file: {path: out.json}}\n"), 0o644)
	if code, _, errOut := runCmd(t, dir, "stale", "--config", "flagsync.yaml"); code != 2 || !strings.Contains(errOut, "STALE_TEST_UNSET_FLAGS_PATH") {
		t.Errorf("unset source variable: code %d, stderr %q", code, errOut)
	}
}
