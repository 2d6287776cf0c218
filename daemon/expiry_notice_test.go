package daemon

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagsync/flagsync/lifecycle"
	"github.com/flagsync/flagsync/notify"
)

// expiryEvents returns the expiry events the hook has received so far.
func (h *hook) expiryEvents() []notify.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []notify.Event
	for _, ev := range h.events {
		if ev.Type == notify.TypeExpiry {
			out = append(out, ev)
		}
	}
	return out
}

// TestExpiryAnnouncedWhenFirstSeen: with the default @daily cleanup schedule, a flag
// found expired at a sync (here the first, as at start) is logged at WARN and notified
// right away, once — not again at the next sync, and not only at the cleanup tick. A
// flag that expires later is announced at the sync that first sees it.
func TestExpiryAnnouncedWhenFirstSeen(t *testing.T) {
	hk := newHook(t)
	var mu sync.Mutex
	now := lcNow
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := newHarness(t, hopts{now: clock, extra: fmt.Sprintf("cleanup: {action: disable, warnBefore: 0}\n"+
		"notify:\n  webhooks:\n    - {name: hook, url: %q, maxAttempts: 1, filter: {kinds: [expiry]}}\n", hk.srv.URL)})
	h.writeFlags(fmt.Sprintf(`flags:
  old_promo: {state: ENABLED, variants: {"on": true, "off": false}, defaultVariant: "on", metadata: {expiresAt: %q, owner: team-growth}}
  later: {state: ENABLED, variants: {"on": true, "off": false}, defaultVariant: "on", metadata: {expiresAt: "2026-06-10T00:00:00Z", owner: team-web}}
`, lcExpired))
	h.mustSync()

	ev := hk.wait(t, notify.TypeExpiry)
	c := changeOf(ev, "old_promo")
	if c == nil || c.Kind != notify.KindExpiry || c.Owner != "team-growth" || c.Action != lifecycle.ActionDisable || !strings.Contains(c.Detail, "expired") {
		t.Fatalf("expiry event = %+v", ev)
	}
	if changeOf(ev, "later") != nil {
		t.Errorf("a flag not yet expired was announced: %+v", ev)
	}
	warn := ""
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(l, `"level":"WARN"`) && strings.Contains(l, `"msg":"flag expired"`) && strings.Contains(l, `"flag":"old_promo"`) {
			warn = l
		}
	}
	if !strings.Contains(warn, `"owner":"team-growth"`) || !strings.Contains(warn, `"action":"disable"`) {
		t.Errorf("no WARN line for the expired flag at sync; logs:\n%s", h.logs.String())
	}

	// The next sync sees nothing new: no second event, no second WARN line.
	h.mustSync()
	cur, err := os.ReadFile(h.flags)
	if err != nil {
		t.Fatal(err)
	}
	h.writeFlags(string(cur) + "  filler: {state: ENABLED, variants: {\"on\": true}, defaultVariant: \"on\"}\n")
	h.mustSync()
	if n := strings.Count(h.logs.String(), `"msg":"flag expired","flag":"old_promo"`); n != 1 {
		t.Errorf("old_promo logged as expired %d times over three syncs, want 1", n)
	}

	// A configuration reload (SIGHUP) carries what was announced: no repeat.
	b, err := New(h.d.Config(), Options{Metrics: NewMetrics(), Logger: discardLogger(), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.InheritSources(h.d)
	if _, err := b.Sync(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if n := len(hk.expiryEvents()); n != 1 {
		t.Errorf("%d expiry events after a reload, want still 1", n)
	}

	// Time passes: "later" expires and is announced at the sync that first sees it.
	mu.Lock()
	now = time.Date(2026, 6, 11, 0, 0, 0, 0, time.UTC)
	mu.Unlock()
	h.mustSync()
	deadline := time.Now().Add(10 * time.Second)
	for len(hk.expiryEvents()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	evs := hk.expiryEvents()
	if len(evs) != 2 || changeOf(evs[1], "later") == nil || changeOf(evs[1], "old_promo") != nil {
		t.Fatalf("expiry events = %+v, want a second one naming only later", evs)
	}
}
