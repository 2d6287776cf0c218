package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/notify"
)

// hookReceiver is a local webhook endpoint that keeps every event it receives.
type hookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []notify.Event
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev notify.Event
		if err := json.NewDecoder(r.Body).Decode(&ev); err == nil {
			h.mu.Lock()
			h.events = append(h.events, ev)
			h.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// of returns the events of type typ naming flag ("" any).
func (h *hookReceiver) of(typ notify.Type, flag string) []notify.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []notify.Event
	for _, ev := range h.events {
		if ev.Type != typ {
			continue
		}
		if flag == "" || slices.ContainsFunc(ev.Changes, func(c notify.Change) bool { return c.Flag == flag }) {
			out = append(out, ev)
		}
	}
	return out
}

// pipelineEnv is a daemon reading a file (git) and a real Consul agent (kv), writing
// a file, and notifying a local webhook receiver.
type pipelineEnv struct {
	*e2eEnv
	consul *testsvc.Consul
	hook   *hookReceiver
}

func newPipelineEnv(t *testing.T, bin string, fileFlags string) *pipelineEnv {
	t.Helper()
	e := &pipelineEnv{e2eEnv: &e2eEnv{t: t, bin: bin, dir: t.TempDir()}, consul: testsvc.StartConsul(t), hook: newHookReceiver(t)}
	e.flags = filepath.Join(e.dir, "flags.yaml")
	e.out = filepath.Join(e.dir, "var", "flags.json")
	e.config = filepath.Join(e.dir, "flagsync.yaml")
	e.listen = fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t))
	e.writeFlags(fileFlags)
	e.writeConfig(fmt.Sprintf(`flagSetId: e2e
schedule: "@every 1h"
sources:
  - {name: git, type: file, path: %q, watchDebounce: 5ms}
  - {name: kv, type: consul, address: %q, prefix: flags/}
outputs:
  file: {path: %q}
http: {listen: %q, auth: {admin: {env: [FS_ADMIN]}}}
log: {level: debug}
notify:
  webhooks:
    - {name: hook, url: %q, maxAttempts: 1}
`, e.flags, e.consul.Addr, e.out, e.listen, e.hook.srv.URL))
	return e
}

// pipelineAdminToken is the daemon's http.auth admin token in these tests.
const pipelineAdminToken = "pipeline-admin-token-0123456789"

// start runs the daemon with the admin token configured; the process sends it.
func (e *pipelineEnv) start() *daemonProc {
	e.t.Helper()
	p := e.e2eEnv.start("FS_ADMIN=" + pipelineAdminToken)
	p.token = pipelineAdminToken
	return p
}

// release is POST /api/v1/release as an operator sends it (admin token, JSON).
func (p *daemonProc) release(source string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, p.http+"/api/v1/release?source="+source, strings.NewReader("{}"))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.token)
	return http.DefaultClient.Do(req)
}

func (e *pipelineEnv) kv(method, key, value string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.consul.URL()+"/v1/kv/flags/"+key, strings.NewReader(value))
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("consul %s %s: %v", method, key, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		e.t.Fatalf("consul %s %s: %s %s", method, key, resp.Status, body)
	}
}

// published returns the default variant of every flag in the file output.
func (e *pipelineEnv) published() map[string]string {
	e.t.Helper()
	set, err := loadFile(e.out)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, k := range set.Keys() {
		f, _ := set.Flag(k)
		out[k] = ""
		if f.DefaultVariant != nil {
			out[k] = *f.DefaultVariant
		}
	}
	return out
}

// kvSeen waits until the daemon's last fetch of kv holds n keys.
func (p *daemonProc) kvSeen(n int) {
	p.t.Helper()
	eventually(p.t, fmt.Sprintf("kv fetched with %d keys", n), func() bool {
		st, ok := p.status()
		if !ok {
			return false
		}
		for _, s := range st["sources"].([]any) {
			m := s.(map[string]any)
			if m["name"] == "kv" {
				return int(m["overlays"].(float64))+int(m["definitions"].(float64)) == n
			}
		}
		return false
	})
}

// withheld is the kv hold's withheld flags in the status (nil when not held).
func (p *daemonProc) withheld() []string {
	st, ok := p.status()
	if !ok {
		return nil
	}
	holds, _ := st["holds"].([]any)
	for _, h := range holds {
		m := h.(map[string]any)
		if m["source"] == "kv" {
			var out []string
			for _, k := range m["withheld"].([]any) {
				out = append(out, k.(string))
			}
			return out
		}
	}
	return nil
}

func kvKey(i int) string { return fmt.Sprintf("k%02d", i) }

// TestSourceGuardHoldsOneSource: deleting 16 of 20 Consul keys one at a time holds
// the Consul source once the removals exceed the guard (the rest stays published),
// a change in another source publishes during the hold, a partial restore and a
// restart do not publish the deletion, and `flagsync sync --once --force` and POST
// /api/v1/release publish it and reset the baseline.
func TestSourceGuardHoldsOneSource(t *testing.T) {
	bin := buildFlagsync(t)
	e := newPipelineEnv(t, bin, flagDoc("g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8", "g9",
		"g10", "g11", "g12", "g13", "g14", "g15", "g16", "g17", "g18", "g19", "g20", "g21", "g22", "g23", "g24",
		"g25", "g26", "g27", "g28", "g29", "g30", "g31", "g32", "g33"))
	for i := range 20 {
		e.kv("PUT", kvKey(i), "true")
	}
	p := e.start()
	p.waitReady()
	eventually(t, "54 flags published", func() bool { return len(e.published()) == 54 })

	// One at a time, each seen by the daemon before the next.
	for i := range 16 {
		e.kv("DELETE", kvKey(i), "")
		p.kvSeen(19 - i)
	}
	want := []string{"k10", "k11", "k12", "k13", "k14", "k15"}
	eventually(t, "kv held with k10..k15 withheld\n"+p.out.String(), func() bool { return slices.Equal(p.withheld(), want) })
	pub := e.published()
	for i := range 20 {
		_, has := pub[kvKey(i)]
		if has != (i >= 10) {
			t.Fatalf("%s published=%v; the first 10 removals (50%%) publish, the rest are withheld", kvKey(i), has)
		}
	}
	if n := strings.Count(p.out.String(), "guard: source held"); n != 1 {
		t.Errorf("%d hold log lines, want 1", n)
	}
	eventually(t, "one guard notification", func() bool { return len(e.hook.of(notify.TypeGuard, "k10")) == 1 })

	// A re-enable in another source publishes during the hold.
	e.writeFlags(strings.Replace(flagDoc("g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8", "g9",
		"g10", "g11", "g12", "g13", "g14", "g15", "g16", "g17", "g18", "g19", "g20", "g21", "g22", "g23", "g24",
		"g25", "g26", "g27", "g28", "g29", "g30", "g31", "g32", "g33"), "defaultVariant: \"off\"", "defaultVariant: \"on\"", 1))
	eventually(t, "g0 re-enabled during the hold", func() bool { return e.published()["g0"] == "on" })
	if _, ok := e.published()["k15"]; !ok {
		t.Fatal("the git change published kv's withheld removals")
	}

	// Partial restore: k10..k12 back, k13..k15 still missing.
	for i := 10; i < 13; i++ {
		e.kv("PUT", kvKey(i), "true")
		p.kvSeen(4 + i - 9)
	}
	eventually(t, "hold keeps k13..k15", func() bool { return slices.Equal(p.withheld(), []string{"k13", "k14", "k15"}) })
	for _, k := range []string{"k13", "k14", "k15"} {
		if _, ok := e.published()[k]; !ok {
			t.Fatalf("a partial restore published the removal of %s", k)
		}
	}

	// A restart keeps the hold (guard state file) and publishes no removal.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exit(20 * time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.out.String())
	}
	p = e.start()
	p.waitReady()
	p.kvSeen(7)
	eventually(t, "hold survives the restart\n"+p.out.String(), func() bool { return slices.Equal(p.withheld(), []string{"k13", "k14", "k15"}) })
	if _, ok := e.published()["k13"]; !ok {
		t.Fatal("a restart published the held removal")
	}

	// flagsync sync --once --force releases: the removal publishes and stays.
	out, err := exec.Command(bin, "sync", "--once", "--force", "--config", e.config).CombinedOutput()
	if err != nil {
		t.Fatalf("sync --force: %v\n%s", err, out)
	}
	if _, ok := e.published()["k13"]; ok {
		t.Fatalf("forced sync did not publish the removal\n%s", out)
	}
	e.kv("PUT", "other", "true") // any change makes the daemon publish again
	p.kvSeen(8)
	eventually(t, "daemon publishes after the forced sync", func() bool { _, ok := e.published()["other"]; return ok })
	if pub := e.published(); pub["k13"] != "" || p.withheld() != nil {
		t.Fatalf("the daemon brought back the released removal or still holds: %v", p.withheld())
	}
	if _, ok := e.published()["k13"]; ok {
		t.Fatal("the daemon brought back the released removal")
	}

	// The baseline starts over: now 8 kv keys; removing 5 one at a time trips again,
	// and POST /api/v1/release publishes it.
	for _, k := range []string{"k10", "k11", "k12", "k16", "k17"} {
		e.kv("DELETE", k, "")
	}
	eventually(t, "held again", func() bool { return len(p.withheld()) > 0 })
	resp, err := p.release("kv")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || p.withheld() != nil {
		t.Fatalf("release: %s %s", resp.Status, body)
	}
	p.kvSeen(3)
	eventually(t, "release published the removals", func() bool {
		pub := e.published()
		_, a := pub["k10"]
		_, b := pub["k17"]
		_, c := pub["k18"]
		return !a && !b && c
	})
	if len(e.hook.of(notify.TypeGuardRelease, "")) < 2 {
		t.Errorf("releases notified: %d", len(e.hook.of(notify.TypeGuardRelease, "")))
	}
	resp, err = p.release("nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("release of an unknown source: %s", resp.Status)
	}
}

// TestBadValueKeepsFlag: a typo in a Consul overlay (ture for a boolean flag) keeps
// the published value, is reported once (one WARN, one rejected notification) however
// many syncs follow, and once more when fixed.
func TestBadValueKeepsFlag(t *testing.T) {
	bin := buildFlagsync(t)
	e := newPipelineEnv(t, bin, flagDoc("beta_mode", "other"))
	e.kv("PUT", "beta_mode", "true")
	p := e.start()
	p.waitReady()
	eventually(t, "beta_mode on", func() bool { return e.published()["beta_mode"] == "on" })

	e.kv("PUT", "beta_mode", "ture")
	eventually(t, "rejection in the status", func() bool {
		st, ok := p.status()
		rej, _ := st["rejected"].([]any)
		return ok && len(rej) == 1 && rej[0].(map[string]any)["flag"] == "beta_mode"
	})
	if got := e.published()["beta_mode"]; got != "on" {
		t.Fatalf("beta_mode = %q after a typo, want it kept on", got)
	}
	// More syncs (other changes) do not repeat the alert.
	for i := range 3 {
		e.kv("PUT", fmt.Sprintf("x%d", i), "true")
		p.kvSeen(i + 2)
	}
	eventually(t, "x2 published", func() bool { _, ok := e.published()["x2"]; return ok })
	if got := e.published()["beta_mode"]; got != "on" {
		t.Fatalf("beta_mode = %q", got)
	}
	if n := strings.Count(p.out.String(), `msg="value rejected"`); n != 1 {
		t.Errorf("%d WARN lines for one problem, want 1\n%s", n, p.out.String())
	}
	if !strings.Contains(p.out.String(), "consul:flags/beta_mode@") {
		t.Error("the WARN line does not name the key and its version")
	}
	if strings.Contains(p.out.String(), `"ture"`) || strings.Contains(p.out.String(), ` ture`) {
		t.Error("the rejected value is repeated in the log")
	}
	eventually(t, "one rejected notification", func() bool { return len(e.hook.of(notify.TypeRejected, "beta_mode")) == 1 })
	for _, ev := range e.hook.of(notify.TypePublish, "beta_mode") {
		for _, c := range ev.Changes {
			if c.Flag == "beta_mode" && c.Kind != notify.KindAdded {
				t.Errorf("the typo was published as a change: %+v", c)
			}
		}
	}

	e.kv("PUT", "beta_mode", "false")
	eventually(t, "fixed value published", func() bool { return e.published()["beta_mode"] == "off" })
	eventually(t, "one cleared notification", func() bool { return len(e.hook.of(notify.TypeRejectionCleared, "beta_mode")) == 1 })
	if n := len(e.hook.of(notify.TypeRejected, "beta_mode")); n != 1 {
		t.Errorf("%d rejected notifications, want 1", n)
	}
	if n := len(e.hook.of(notify.TypeRejectionCleared, "beta_mode")); n != 1 {
		t.Errorf("%d cleared notifications, want 1", n)
	}
}

// TestFrozenStoreDelaysNobody: with the Consul agent frozen (SIGSTOP) and its fetch
// timeout at 10 minutes, file changes still publish (they fetch only the file and
// use Consul's last good result), and so does a scheduled fetch that hangs on the
// frozen agent. After SIGCONT, Consul changes publish again.
func TestFrozenStoreDelaysNobody(t *testing.T) {
	bin := buildFlagsync(t)
	e := newPipelineEnv(t, bin, flagDoc("g0"))
	cfg, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(cfg), "prefix: flags/}", "prefix: flags/, timeout: 10m}", 1)
	text = strings.Replace(text, `schedule: "@every 1h"`, `schedule: "@every 1s"`, 1)
	e.writeConfig(text)
	e.kv("PUT", "from_kv", "true")
	p := e.start()
	p.waitReady()
	eventually(t, "kv flag published", func() bool { _, ok := e.published()["from_kv"]; return ok })

	if err := e.consul.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			_ = e.consul.Signal(syscall.SIGCONT)
		}
	}
	defer thaw()
	for i := 1; i <= 3; i++ {
		keys := []string{"g0"}
		for j := 1; j <= i; j++ {
			keys = append(keys, fmt.Sprintf("g%d", j))
		}
		e.writeFlags(flagDoc(keys...))
		eventually(t, fmt.Sprintf("file change %d published while Consul is frozen\n%s", i, p.out.String()), func() bool {
			pub := e.published()
			_, kv := pub["from_kv"]
			return len(pub) == i+2 && kv
		})
	}
	thaw()
	e.kv("PUT", "after_thaw", "true")
	eventually(t, "Consul change after SIGCONT", func() bool { _, ok := e.published()["after_thaw"]; return ok })
}

// The operator's release, `flagsync sync --once --force`, serves no HTTP: it must run
// where the config is mounted but the daemon's http.auth token variables are not set
// (an operator's shell), while `run` still refuses a config whose tokens are missing.
func TestSyncOnceNeedsNoHTTPTokens(t *testing.T) {
	e := newE2E(t, buildFlagsync(t), false, "")
	e.writeConfig(strings.Replace(mustRead(t, e.config), "http: {listen:", "http: {auth: {admin: {env: [FS_UNSET_ADMIN_TOKEN]}}, listen:", 1))
	cmd := exec.Command(e.bin, "sync", "--once", "--config", e.config)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "FS_UNSET_ADMIN_TOKEN=") })
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sync --once without the http token variable: %v\n%s", err, out)
	}
	run := exec.Command(e.bin, "run", "--config", e.config)
	run.Env = cmd.Env
	out, err := run.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "FS_UNSET_ADMIN_TOKEN is not set") {
		t.Fatalf("run without the token variable: err %v\n%s", err, out)
	}
}
