package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/hashicorp/consul/api"
	"go.yaml.in/yaml/v3"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/lifecycle"
	"github.com/flagsync/flagsync/notify"
	"github.com/flagsync/flagsync/sources"
)

// The lifecycle tests run at a fixed time: flags "old_*" expired a month before,
// "soon_*" expire within warnBefore, "fresh_*" are far from expiry.
var (
	lcNow     = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	lcExpired = "2026-05-01T00:00:00Z"
	lcSoon    = "2026-06-05T00:00:00Z"
	lcFresh   = "2027-01-01T00:00:00Z"
)

func flagJSON(expires, owner string) string {
	return fmt.Sprintf(`{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"on","metadata":{"expiresAt":%q,"owner":%q}}`, expires, owner)
}

// lcStores is one real Consul agent and one moto_server shared by the subtests.
type lcStores struct {
	consul *testsvc.Consul
	kv     *api.KV
	moto   *testsvc.Moto
	ssm    *ssm.Client
}

func startStores(t *testing.T) *lcStores {
	t.Helper()
	// moto_server inherits the environment: start it before the test's AWS settings.
	s := &lcStores{consul: testsvc.StartConsul(t), moto: testsvc.StartMoto(t)}
	testsvc.IsolateAWS(t, "")
	client, err := api.NewClient(&api.Config{Address: s.consul.Addr})
	if err != nil {
		t.Fatal(err)
	}
	s.kv = client.KV()
	s.ssm = ssm.New(ssm.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.moto.URL),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	return s
}

func (s *lcStores) put(t *testing.T, key, value string) {
	t.Helper()
	if _, err := s.kv.Put(&api.KVPair{Key: key, Value: []byte(value)}, nil); err != nil {
		t.Fatal(err)
	}
}

func (s *lcStores) kvExists(t *testing.T, key string) bool {
	t.Helper()
	p, _, err := s.kv.Get(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p != nil
}

func (s *lcStores) putParam(t *testing.T, name, value string, typ types.ParameterType) {
	t.Helper()
	if _, err := s.ssm.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String(name),
		Value: aws.String(value), Type: typ, Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
}

func (s *lcStores) paramExists(t *testing.T, name string) bool {
	t.Helper()
	_, err := s.ssm.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil && !strings.Contains(err.Error(), "ParameterNotFound") {
		t.Fatal(err)
	}
	return err == nil
}

// hook is an httptest webhook receiver collecting the notify events.
type hook struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []notify.Event
}

func newHook(t *testing.T) *hook {
	h := &hook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev notify.Event
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// wait returns the first received event of type typ, waiting up to 10s.
func (h *hook) wait(t *testing.T, typ notify.Type) notify.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		for _, ev := range h.events {
			if ev.Type == typ {
				h.mu.Unlock()
				return ev
			}
		}
		h.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("webhook never received a %s event", typ)
	return notify.Event{}
}

func changeOf(ev notify.Event, flag string) *notify.Change {
	for i := range ev.Changes {
		if ev.Changes[i].Flag == flag {
			return &ev.Changes[i]
		}
	}
	return nil
}

// TestLifecycleActions runs every cleanup action against real Consul and moto SSM
// sources plus a file source, with a controlled clock.
func TestLifecycleActions(t *testing.T) {
	st := startStores(t)
	for _, tc := range []struct {
		name   string
		action lifecycle.ActionKind
		dryRun bool
	}{
		{"report", lifecycle.ActionReport, true},
		{"disable", lifecycle.ActionDisable, true},
		{"remove", lifecycle.ActionRemove, true},
		{"delete-dry", lifecycle.ActionDeleteFromSource, true},
		{"delete", lifecycle.ActionDeleteFromSource, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := "flags/" + tc.name + "/"
			path := "/flags/" + tc.name + "/"
			st.put(t, prefix+"old_consul", flagJSON(lcExpired, "team-kv"))
			st.put(t, prefix+"changed_consul", flagJSON(lcExpired, "team-kv"))
			st.put(t, prefix+"soon_consul", flagJSON(lcSoon, "team-soon"))
			st.put(t, prefix+"decoy", "true")
			st.putParam(t, path+"old_ssm", flagJSON(lcExpired, "team-ssm"), types.ParameterTypeString)
			st.putParam(t, path+"old_secret", flagJSON(lcExpired, "team-secret"), types.ParameterTypeSecureString)
			st.putParam(t, path+"changed_ssm", flagJSON(lcExpired, "team-ssm"), types.ParameterTypeString)
			st.putParam(t, path+"fresh_ssm", flagJSON(lcFresh, "team-ssm"), types.ParameterTypeString)
			decoyIdx := func() uint64 {
				p, _, err := st.kv.Get(prefix+"decoy", nil)
				if err != nil || p == nil {
					t.Fatalf("decoy: %v", err)
				}
				return p.ModifyIndex
			}()
			hk := newHook(t)
			extraSrc := fmt.Sprintf("  - {name: kv, type: consul, address: %q, prefix: %q}\n"+
				"  - {name: params, type: ssm, path: %q, region: us-east-1, endpoint: %q}\n", st.consul.Addr, prefix, path, st.moto.URL)
			dryRun := ""
			if tc.action == lifecycle.ActionDeleteFromSource {
				dryRun = fmt.Sprintf("  dryRun: %v\n", tc.dryRun)
			}
			extra := fmt.Sprintf("environment: prod\nguards: {maxRemovedFraction: 1}\ncleanup:\n  warnBefore: 14d\n  action: {default: report, prod: %s}\n%s"+
				"notify:\n  webhooks:\n    - {name: hook, url: %q, maxAttempts: 1}\n", tc.action, dryRun, hk.srv.URL)
			h := newHarness(t, hopts{extraSrc: extraSrc, extra: extra, now: func() time.Time { return lcNow }})
			// A file flag that claims to come from Consul (a copied snapshot): it must
			// never make cleanup delete the Consul key it names.
			h.writeFlags(fmt.Sprintf(`flags:
  old_file: {state: ENABLED, variants: {"on": true, "off": false}, defaultVariant: "on", metadata: {expiresAt: %q, owner: team-file}}
  decoy_file: {state: ENABLED, variants: {"on": true, "off": false}, defaultVariant: "on", metadata: {expiresAt: %q, source: "consul:%sdecoy@%d"}}
  fresh_file: {state: ENABLED, variants: {"on": true, "off": false}, defaultVariant: "on", metadata: {expiresAt: %q}}
`, lcExpired, lcExpired, prefix, decoyIdx, lcFresh))
			h.mustSync()

			expired := []string{"old_consul", "changed_consul", "old_ssm", "old_secret", "changed_ssm", "old_file", "decoy_file"}
			set := h.published()
			for _, k := range expired {
				f, ok := set.Flag(k)
				switch tc.action {
				case lifecycle.ActionReport:
					if !ok || f.State != flagset.Enabled {
						t.Errorf("report: %s should be served unchanged, got %v %v", k, ok, f)
					}
				case lifecycle.ActionDisable:
					if !ok || f.State != flagset.Disabled {
						t.Errorf("disable: %s should be served DISABLED, got %v %+v", k, ok, f)
					}
				default:
					if ok {
						t.Errorf("%s: expired %s is still served", tc.action, k)
					}
				}
			}
			for _, k := range []string{"soon_consul", "fresh_ssm", "fresh_file", "decoy"} {
				if f, ok := set.Flag(k); !ok || f.State != flagset.Enabled {
					t.Errorf("%s should be served enabled", k)
				}
			}
			// Status lists expiring and expired flags with their owners.
			status := h.d.Status()
			byFlag := map[string]lifecycle.Finding{}
			for _, f := range status.Expiry {
				byFlag[f.Flag] = f
			}
			if f := byFlag["soon_consul"]; f.Status != lifecycle.StatusExpiring || f.Owner != "team-soon" {
				t.Errorf("status soon_consul = %+v", f)
			}
			if f := byFlag["old_ssm"]; f.Status != lifecycle.StatusExpired || f.Owner != "team-ssm" || !strings.HasPrefix(f.Source, "ssm:"+path+"old_ssm@") {
				t.Errorf("status old_ssm = %+v", f)
			}
			if _, ok := byFlag["fresh_ssm"]; ok {
				t.Errorf("status lists fresh_ssm")
			}
			if got := counter(t, h.metrics.FlagsExpiry.WithLabelValues("expired")); got != float64(len(expired)) {
				t.Errorf("expired gauge = %v, want %d", got, len(expired))
			}
			// The first publish is notified with every flag added.
			pub := hk.wait(t, notify.TypePublish)
			if c := changeOf(pub, "fresh_ssm"); c == nil || c.Kind != notify.KindAdded {
				t.Errorf("publish event lacks fresh_ssm added: %+v", pub)
			}
			if pub.Environment != "prod" {
				t.Errorf("publish event environment = %q", pub.Environment)
			}

			// Written after the snapshot: the deleters must refuse these.
			st.put(t, prefix+"changed_consul", flagJSON(lcExpired, "someone-else"))
			st.putParam(t, path+"changed_ssm", flagJSON(lcExpired, "someone-else"), types.ParameterTypeString)

			rep, err := h.d.Cleanup(context.Background())
			acts := map[string]lifecycle.Action{}
			for _, a := range rep.Actions {
				acts[a.Flag] = a
			}
			for _, k := range expired {
				if a, ok := acts[k]; !ok || a.Kind != tc.action {
					t.Errorf("cleanup action for %s = %+v, want %s", k, a, tc.action)
				}
			}
			logs := h.logs.String()
			deleting := tc.action == lifecycle.ActionDeleteFromSource && !tc.dryRun
			if deleting {
				if err == nil || !strings.Contains(err.Error(), "changed since the snapshot") {
					t.Errorf("cleanup error = %v, want the changed values refused", err)
				}
			} else if err != nil {
				t.Errorf("cleanup: %v", err)
			}
			gone := map[string]bool{
				"consul old_consul": !st.kvExists(t, prefix+"old_consul"), "consul changed_consul": !st.kvExists(t, prefix+"changed_consul"),
				"consul decoy": !st.kvExists(t, prefix+"decoy"), "consul soon_consul": !st.kvExists(t, prefix+"soon_consul"),
				"ssm old_ssm": !st.paramExists(t, path+"old_ssm"), "ssm old_secret": !st.paramExists(t, path+"old_secret"),
				"ssm changed_ssm": !st.paramExists(t, path+"changed_ssm"), "ssm fresh_ssm": !st.paramExists(t, path+"fresh_ssm"),
			}
			wantGone := map[string]bool{"consul old_consul": deleting, "ssm old_ssm": deleting, "ssm old_secret": deleting}
			for k, g := range gone {
				if g != wantGone[k] {
					t.Errorf("%s deleted = %v, want %v", k, g, wantGone[k])
				}
			}
			if b, _ := os.ReadFile(h.flags); !strings.Contains(string(b), "old_file") {
				t.Errorf("the flags file was changed")
			}
			if a := acts["old_file"]; tc.action == lifecycle.ActionDeleteFromSource && !strings.Contains(a.Skipped, "file") {
				t.Errorf("old_file skip = %q", a.Skipped)
			}
			if a := acts["decoy_file"]; tc.action == lifecycle.ActionDeleteFromSource && !strings.Contains(a.Skipped, "defined in a file") {
				t.Errorf("decoy_file skip = %q", a.Skipped)
			}
			auditLine := func(msg, flag string) string {
				for _, l := range strings.Split(logs, "\n") {
					if strings.Contains(l, `"log":"audit"`) && strings.Contains(l, `"msg":"`+msg) && strings.Contains(l, `"flag":"`+flag+`"`) {
						return l
					}
				}
				return ""
			}
			switch {
			case tc.action != lifecycle.ActionDeleteFromSource:
				if strings.Contains(logs, `"log":"audit"`) {
					t.Errorf("%s wrote audit lines", tc.action)
				}
			case tc.dryRun:
				l := auditLine("flag would be deleted from source (dry run)", "old_consul")
				if !strings.Contains(l, `"previous":"{\"state\":\"ENABLED\"`) || !strings.Contains(l, `"who":"flagsync-cleanup`) {
					t.Errorf("dry-run audit line for old_consul: %q", l)
				}
				if l := auditLine("flag would be deleted from source (dry run)", "old_secret"); !strings.Contains(l, `"previous":"<redacted SecureString>"`) {
					t.Errorf("dry-run audit line for old_secret: %q", l)
				}
			default:
				if l := auditLine("flag deleted from source", "old_ssm"); !strings.Contains(l, `"previous":"{\"state\":\"ENABLED\"`) || !strings.Contains(l, `"owner":"team-ssm"`) {
					t.Errorf("audit line for old_ssm: %q", l)
				}
				if l := auditLine("flag deleted from source", "old_secret"); !strings.Contains(l, `"previous":"<redacted SecureString>"`) {
					t.Errorf("audit line for old_secret: %q", l)
				}
				if l := auditLine("flag not deleted from source", "changed_consul"); !strings.Contains(l, "changed since the snapshot") {
					t.Errorf("audit line for changed_consul: %q", l)
				}
				if l := auditLine("flag not deleted from source", "decoy_file"); l == "" {
					t.Errorf("no audit line for decoy_file")
				}
			}
			// The SecureString's content (its owner field) never appears as a logged value,
			// nor as the owner in expiry lines, audit lines, the status or notifications.
			if strings.Contains(logs, `\"owner\":\"team-secret\"`) || strings.Contains(logs, "team-secret") {
				t.Errorf("a SecureString value reached the log")
			}
			if f := byFlag["old_secret"]; f.Owner != notify.Redacted {
				t.Errorf("status owner of old_secret = %q, want it redacted", f.Owner)
			}
			if c := changeOf(hk.wait(t, notify.TypeExpiry), "old_secret"); c == nil || c.Owner != notify.Redacted {
				t.Errorf("expiry event change for old_secret = %+v, want its owner redacted", c)
			}

			ce := hk.wait(t, notify.TypeCleanup)
			if c := changeOf(ce, "old_ssm"); c == nil || c.Kind != notify.KindCleanup || c.Action != tc.action {
				t.Errorf("cleanup event lacks old_ssm: %+v", ce)
			}
			// After a real deletion the next sync no longer sees the deleted flags.
			if deleting {
				h.mustSync()
				set := h.published()
				for _, k := range []string{"old_consul", "old_ssm", "old_secret"} {
					if _, ok := set.Flag(k); ok {
						t.Errorf("%s is published after its deletion", k)
					}
				}
			}
		})
	}
}

// TestExpiryGuardTripNotified: many flags expiring at once under remove trips the
// maxRemovedFraction guard (loudly), and the trip is notified once.
func TestExpiryGuardTripNotified(t *testing.T) {
	hk := newHook(t)
	now := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	extra := fmt.Sprintf("cleanup: {action: remove}\nnotify:\n  webhooks:\n    - {name: hook, url: %q, maxAttempts: 1, filter: {kinds: [guard]}}\n", hk.srv.URL)
	h := newHarness(t, hopts{extra: extra, now: clock})
	var b strings.Builder
	b.WriteString("flags:\n")
	for i := range 4 {
		exp := lcExpired
		if i == 0 {
			exp = lcFresh
		}
		fmt.Fprintf(&b, "  f%d: {state: ENABLED, variants: {\"on\": true, \"off\": false}, defaultVariant: \"on\", metadata: {expiresAt: %q}}\n", i, exp)
	}
	h.writeFlags(b.String())
	if rep := h.mustSync(); rep.Flags != 4 {
		t.Fatalf("before expiry: %d flags published, want 4", rep.Flags)
	}
	mu.Lock()
	now = lcNow
	mu.Unlock()
	rep, err := h.sync(false)
	if err == nil || rep.Result != "refused" {
		t.Fatalf("3 of 4 flags expiring under remove: result %s err %v, want a guard refusal", rep.Result, err)
	}
	_, _ = h.sync(false) // the same finding again: no second alert
	ev := hk.wait(t, notify.TypeGuard)
	if !strings.Contains(ev.Message, "maxRemovedFraction") || changeOf(ev, "f1") == nil || changeOf(ev, "f0") != nil {
		t.Errorf("guard event = %+v", ev)
	}
	time.Sleep(100 * time.Millisecond)
	hk.mu.Lock()
	n := len(hk.events)
	hk.mu.Unlock()
	if n != 1 {
		t.Errorf("webhook got %d events, want exactly 1 (filter: guard; repeated finding not re-sent)", n)
	}
}

func TestLifecycleConfig(t *testing.T) {
	c, err := ParseConfig([]byte(minimal+`environment: staging
cleanup:
  schedule: "30 0 3 * * *"
  warnBefore: 7d
  grace: 1d12h
  action: {default: report, staging: remove, prod: deleteFromSource}
  dryRun: false
notify:
  queueSize: 8
  webhooks:
    - {name: a, url: "http://127.0.0.1:1/x", format: slack, filter: {flags: ["checkout_*"], kinds: [changed]}}
  exec:
    - {name: smoke, command: [./smoke.sh], timeout: 5s}
`), lookupFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	lc := c.CleanupConfig()
	if lc.Schedule != "30 0 3 * * *" || time.Duration(lc.WarnBefore) != 7*24*time.Hour || time.Duration(lc.Grace) != 36*time.Hour ||
		lc.IsDryRun() || lc.ActionFor(c.Environment) != lifecycle.ActionRemove || lc.ActionFor("prod") != lifecycle.ActionDeleteFromSource {
		t.Errorf("cleanup: %+v", lc)
	}
	if c.Notify.QueueSize != 8 || len(c.Notify.Webhooks) != 1 || c.Notify.Webhooks[0].Format != "slack" ||
		c.Notify.Webhooks[0].Filter.Kinds[0] != notify.KindChanged || c.Notify.Exec[0].Command[0] != "./smoke.sh" {
		t.Errorf("notify: %+v", c.Notify)
	}
	def, err := ParseConfig([]byte(minimal), lookupFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	if lc := def.CleanupConfig(); lc.Schedule != lifecycle.DefaultSchedule || lc.ActionFor("") != lifecycle.ActionReport || !lc.IsDryRun() {
		t.Errorf("default cleanup: %+v", lc)
	}
	for bad, want := range map[string]string{
		"cleanup: {action: nuke}\n":                                    "cleanup.action",
		"cleanup: {schedul: '@daily'}\n":                               "cleanup.schedul: unknown key",
		"cleanup: {schedule: 'every full moon'}\n":                     "cleanup.schedule",
		"cleanup: {warnBefore: 2 weeks}\n":                             "cleanup.warnBefore",
		"cleanup: {action: remove, dryRun: true}\n":                    "cleanup.dryRun: only applies to action deleteFromSource",
		"notify: {webhooks: [{name: a, url: 'ftp://x'}]}\n":            "notify.webhooks[0].url",
		"notify: {webhooks: [{name: a, url: 'http://x', bogus: 1}]}\n": "notify.webhooks[0].bogus: unknown key",
		"notify: {exec: [{name: s}]}\n":                                "notify.exec[0].command",
	} {
		_, err := ParseConfig([]byte(minimal+bad), lookupFrom(nil))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want it to name %s", bad, err, want)
		}
	}
}

// TestRunCleanupSchedule: Run runs the cleanup on cleanup.schedule (here every second,
// with the optional seconds field) and notifies its actions.
func TestRunCleanupSchedule(t *testing.T) {
	hk := newHook(t)
	extra := fmt.Sprintf("schedule: \"@every 1h\"\ncleanup: {schedule: \"* * * * * *\"}\nnotify:\n  webhooks:\n    - {name: hook, url: %q, maxAttempts: 1, filter: {kinds: [cleanup]}}\n", hk.srv.URL)
	h := newHarness(t, hopts{extra: extra, now: func() time.Time { return lcNow }})
	h.writeFlags(fmt.Sprintf("flags:\n  old: {state: ENABLED, variants: {\"on\": true}, defaultVariant: \"on\", metadata: {expiresAt: %q, owner: me}}\n", lcExpired))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	ev := hk.wait(t, notify.TypeCleanup)
	if c := changeOf(ev, "old"); c == nil || c.Action != lifecycle.ActionReport || c.Owner != "me" {
		t.Errorf("cleanup event = %+v", ev)
	}
	if got := counter(t, h.metrics.CleanupActions.WithLabelValues("report", "reported")); got < 1 {
		t.Errorf("cleanup actions counter = %v", got)
	}
	if !strings.Contains(h.logs.String(), `"msg":"flag expired"`) {
		t.Errorf("the expired flag was not logged")
	}
}

// delFake is a deletable source (type "delfake") recording its deletions.
var _ sources.Deleter = (*delFake)(nil)

type delFake struct {
	name    string
	mu      sync.Mutex
	deleted []string
}

func (f *delFake) Name() string { return f.name }
func (f *delFake) Fetch(context.Context) (*sources.Result, error) {
	dv := "on"
	res := &sources.Result{Definitions: map[string]*flagset.Flag{"old": {State: flagset.Enabled,
		Variants: map[string]any{"on": true}, DefaultVariant: &dv,
		Metadata: map[string]any{"expiresAt": lcExpired, "source": "delfake:old@1"}}}}
	res.SetOrigin("old", sources.Origin{Scheme: "delfake", Location: "old", Version: 1})
	return res, nil
}
func (f *delFake) Delete(_ context.Context, key string, _ sources.Origin) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, key)
	return []byte("prev"), nil
}

var delFakes sync.Map

func init() {
	sourceTypes["delfake"] = func(name string, _ *yaml.Node, _ SourceDeps) (sources.Source, error) {
		f, ok := delFakes.Load(name)
		if !ok {
			return nil, fmt.Errorf("no delfake %q", name)
		}
		return f.(*delFake), nil
	}
}

type switchElector struct{ leader atomic.Bool }

func (e *switchElector) Run(ctx context.Context, _ func(context.Context, int64), _ func()) error {
	<-ctx.Done()
	return nil
}
func (e *switchElector) IsLeader() bool { return e.leader.Load() }
func (e *switchElector) Fence() int64 {
	if e.leader.Load() {
		return 1
	}
	return 0
}

// TestCleanupDeletesOnlyOnLeader: with ha, a standby never deletes nor notifies; the
// leader does.
func TestCleanupDeletesOnlyOnLeader(t *testing.T) {
	f := &delFake{name: "del-" + t.Name()}
	delFakes.Store(f.name, f)
	hk := newHook(t)
	h := newHarness(t, hopts{extraSrc: fmt.Sprintf("  - {name: %s, type: delfake}\n", f.name),
		extra: fmt.Sprintf("cleanup: {action: deleteFromSource, dryRun: false}\nnotify: {webhooks: [{name: h, url: %q, maxAttempts: 1, filter: {kinds: [cleanup]}}]}\n", hk.srv.URL),
		now:   func() time.Time { return lcNow }})
	el := &switchElector{}
	d, err := New(h.d.Config(), Options{Metrics: NewMetrics(), Elector: el, Logger: discardLogger(), Now: func() time.Time { return lcNow }})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	if _, err := d.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	rep, err := d.Cleanup(ctx)
	if err != nil || len(rep.Actions) != 1 || !strings.Contains(rep.Actions[0].Skipped, "standby") {
		t.Fatalf("standby cleanup: %+v %v", rep, err)
	}
	f.mu.Lock()
	n := len(f.deleted)
	f.mu.Unlock()
	if n != 0 {
		t.Fatalf("a standby deleted %d flags", n)
	}
	el.leader.Store(true)
	if rep, err := d.Cleanup(ctx); err != nil || len(rep.Actions) != 1 || rep.Actions[0].Skipped != "" {
		t.Fatalf("leader cleanup: %+v %v", rep, err)
	}
	f.mu.Lock()
	got := append([]string(nil), f.deleted...)
	f.mu.Unlock()
	if len(got) != 1 || got[0] != "old" {
		t.Fatalf("leader deleted %v, want [old]", got)
	}
	ev := hk.wait(t, notify.TypeCleanup)
	if c := changeOf(ev, "old"); c == nil || c.Detail != "" {
		t.Errorf("cleanup event = %+v", ev)
	}
	hk.mu.Lock()
	defer hk.mu.Unlock()
	if len(hk.events) != 1 {
		t.Errorf("webhook got %d cleanup events, want 1 (the standby's run sends none)", len(hk.events))
	}
}
