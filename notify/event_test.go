package notify

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/lifecycle"
)

func mustSet(t *testing.T, src string) *flagset.Set {
	t.Helper()
	s, problems, err := flagset.Load([]byte(src))
	if err != nil || len(problems) > 0 {
		t.Fatalf("load: %v %v", err, problems)
	}
	return s
}

func TestPublishEvent(t *testing.T) {
	prev := mustSet(t, `{"flags": {
		"checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off", "metadata": {"owner": "payments"}},
		"banner":   {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": "a"},
		"same":     {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "x"}}}`)
	next := mustSet(t, `{"metadata": {"flagSetId": "shop"}, "flags": {
		"checkout": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on", "metadata": {"owner": "payments", "source": "ssm:/f/checkout@2"}},
		"same":     {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "x"},
		"dark":     {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}}}`)
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.FixedZone("x", 3600))
	ev := PublishEvent(prev, next, at)
	if ev.Type != TypePublish || ev.FlagSetID != "shop" || ev.Revision != next.Revision() || ev.PreviousRevision != prev.Revision() || ev.Time.Location() != time.UTC {
		t.Errorf("event header %+v", ev)
	}
	if len(ev.Changes) != 3 {
		t.Fatalf("changes %+v", ev.Changes)
	}
	banner, checkout, dark := ev.Changes[0], ev.Changes[1], ev.Changes[2]
	if banner.Flag != "banner" || banner.Kind != KindRemoved || banner.New != nil || banner.Old.DefaultValue != "A" {
		t.Errorf("banner %+v", banner)
	}
	if checkout.Kind != KindChanged || checkout.Old.State != flagset.Enabled || checkout.New.State != flagset.Disabled ||
		*checkout.Old.DefaultVariant != "off" || checkout.New.DefaultValue != true || checkout.Owner != "payments" || checkout.Source != "ssm:/f/checkout@2" {
		t.Errorf("checkout %+v old %+v new %+v", checkout, checkout.Old, checkout.New)
	}
	if dark.Kind != KindAdded || dark.Old != nil || dark.New.DefaultValue != true {
		t.Errorf("dark %+v", dark)
	}
	// First publish: everything is added.
	first := PublishEvent(nil, next, at)
	if len(first.Changes) != 3 || first.PreviousRevision != "" {
		t.Errorf("first publish %+v", first)
	}
	for _, c := range first.Changes {
		if c.Kind != KindAdded {
			t.Errorf("first publish change %+v", c)
		}
	}
	if same := PublishEvent(next, next, at); len(same.Changes) != 0 {
		t.Errorf("no-op publish has changes %+v", same.Changes)
	}
}

func TestCleanupAndGuardEvents(t *testing.T) {
	ev := CleanupEvent("shop", []lifecycle.Action{
		{Flag: "z_flag", Kind: lifecycle.ActionDeleteFromSource, Owner: "o", Source: "file:f.yaml", Skipped: "flag is defined in a file"},
		{Flag: "a_flag", Kind: lifecycle.ActionDisable},
	}, time.Now())
	if ev.Type != TypeCleanup || len(ev.Changes) != 2 || ev.Changes[0].Flag != "a_flag" || ev.Changes[1].Detail == "" || ev.Changes[1].Source != "file:f.yaml" || ev.Changes[1].Action != lifecycle.ActionDeleteFromSource {
		t.Errorf("cleanup event %+v", ev)
	}
	g := GuardEvent("shop", "too many removals", []string{"b", "a"}, time.Now())
	if g.Type != TypeGuard || g.Message != "too many removals" || len(g.Changes) != 2 || g.Changes[0].Flag != "a" || g.Changes[0].Kind != KindGuard {
		t.Errorf("guard event %+v", g)
	}
}

func TestRedactSecrets(t *testing.T) {
	dv, old, visible := "TOPSECRET", "OLDSECRET", "on"
	ev := Event{Changes: []Change{
		{Flag: "s", Kind: KindChanged, Old: &State{DefaultVariant: &old, DefaultValue: old}, New: &State{DefaultVariant: &dv, DefaultValue: dv}},
		{Flag: "p", Kind: KindAdded, New: &State{DefaultVariant: &visible, DefaultValue: true}},
		{Flag: "r", Kind: KindRemoved, Old: &State{}},
	}}
	ev.RedactSecrets(func(k string) bool { return k != "p" })
	b, _ := json.Marshal(ev)
	if strings.Contains(string(b), "SECRET") {
		t.Errorf("secret survived: %s", b)
	}
	if *ev.Changes[0].New.DefaultVariant != Redacted || ev.Changes[0].Old.DefaultValue != Redacted || ev.Changes[2].Old.DefaultVariant != nil {
		t.Errorf("redacted states = %+v %+v %+v", ev.Changes[0].Old, ev.Changes[0].New, ev.Changes[2].Old)
	}
	if *ev.Changes[1].New.DefaultVariant != "on" || ev.Changes[1].New.DefaultValue != true {
		t.Errorf("a flag that is not secret was redacted: %+v", ev.Changes[1].New)
	}
}

// TestExpiryEvent: one change per finding, sorted, the action only on expired flags,
// selectable by the expiry kind, and a Slack line that says what happened.
func TestExpiryEvent(t *testing.T) {
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	ev := ExpiryEvent("shop", []lifecycle.Finding{
		{Flag: "z_soon", Status: lifecycle.StatusExpiring, ExpiresAt: at, Owner: "web"},
		{Flag: "a_gone", Status: lifecycle.StatusExpired, ExpiresAt: at, Owner: "growth", Source: "ssm:/f/a_gone@3"},
		{Flag: "m_typo", Status: lifecycle.StatusInvalid, Problem: "flags.m_typo.metadata.expiresAt: not a time"},
	}, lifecycle.ActionDisable, at)
	if ev.Type != TypeExpiry || len(ev.Changes) != 3 || ev.Changes[0].Flag != "a_gone" {
		t.Fatalf("event %+v", ev)
	}
	gone, typo, soon := ev.Changes[0], ev.Changes[1], ev.Changes[2]
	if gone.Kind != KindExpiry || gone.Action != lifecycle.ActionDisable || gone.Detail != "expired on 2026-05-01T00:00:00Z" || gone.Source != "ssm:/f/a_gone@3" {
		t.Errorf("expired change %+v", gone)
	}
	if soon.Action != "" || soon.Detail != "expires on 2026-05-01T00:00:00Z" || !strings.Contains(typo.Detail, "not a time") {
		t.Errorf("changes %+v %+v", soon, typo)
	}
	if _, ok := (Filter{Kinds: []Kind{KindChanged}}).Apply(ev); ok {
		t.Error("a changed-only filter passed an expiry event")
	}
	if err := (Filter{Kinds: []Kind{KindExpiry}}).validate("f"); err != nil {
		t.Errorf("expiry kind refused: %v", err)
	}
	if line := slackLine(gone); !strings.Contains(line, "expired on 2026-05-01") || !strings.Contains(line, "cleanup action disable") {
		t.Errorf("slack line %q", line)
	}
}
