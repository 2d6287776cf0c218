package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/internal/testsvc"
)

func TestDefaultPrefixRule(t *testing.T) {
	if got := DefaultPrefix("prod"); got != "flagsync:prod" {
		t.Fatalf("DefaultPrefix(prod) = %q", got)
	}
	if got := DefaultPrefix(""); got != "flagsync:default" {
		t.Fatalf("DefaultPrefix(\"\") = %q, want flagsync:default", got)
	}
}

func TestKeyBase(t *testing.T) {
	for prefix, want := range map[string]string{
		"flagsync:prod":     "{flagsync:prod}",
		"{flagsync:prod}":   "{flagsync:prod}", // the old cluster advice keeps its names
		"app:{flags}:prod":  "app:{flags}:prod",
		"a{}b":              "{a{}b}", // an empty tag is no tag
		"flagsync:with:col": "{flagsync:with:col}",
	} {
		if got := KeyBase(prefix); got != want {
			t.Errorf("KeyBase(%q) = %q, want %q", prefix, got, want)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	for _, ok := range []string{"flagsync:prod", "{flagsync:prod}", "app:{x}:y", "x"} {
		if err := ValidatePrefix("outputs.redis.prefix", ok); err != nil {
			t.Errorf("ValidatePrefix(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a\nb", "{}", "}x{", "a{b", "{a}{b}", "a}"} {
		err := ValidatePrefix("outputs.redis.prefix", bad)
		if err == nil || !strings.HasPrefix(err.Error(), "outputs.redis.prefix: ") {
			t.Errorf("ValidatePrefix(%q) = %v, want an error naming the field", bad, err)
		}
	}
}

func TestPrefixOfSnapshotKey(t *testing.T) {
	for key, want := range map[string]struct {
		prefix     string
		legacy, ok bool
	}{
		"{flagsync:prod}:snapshot":  {"flagsync:prod", false, true},
		"flagsync:prod:snapshot":    {"flagsync:prod", true, true},
		"app:{x}:y:snapshot":        {"app:{x}:y", false, true},
		"flagsync:prod:revision":    {"", false, false},
		":snapshot":                 {"", false, false},
		"{a{b}:snapshot":            {"{a{b}", false, true},
		"{flagsync:prod}x:snapshot": {"{flagsync:prod}x", false, true},
	} {
		p, legacy, ok := PrefixOfSnapshotKey(key)
		if p != want.prefix || legacy != want.legacy || ok != want.ok {
			t.Errorf("PrefixOfSnapshotKey(%q) = %q, %v, %v; want %+v", key, p, legacy, ok, want)
		}
	}
}

// FuzzPrefixOfSnapshotKey: the prefix read back from any valid prefix's snapshot key
// names the same keys, and from its legacy key the same legacy keys.
func FuzzPrefixOfSnapshotKey(f *testing.F) {
	for _, s := range []string{"flagsync:prod", "{flagsync:prod}", "app:{x}:y", "a:snapshot"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, prefix string) {
		if ValidatePrefix("p", prefix) != nil {
			return
		}
		p, legacy, ok := PrefixOfSnapshotKey(KeysFor(prefix).Snapshot)
		if !ok || legacy || KeysFor(p) != KeysFor(prefix) {
			t.Fatalf("prefix %q: key %q read back as %q legacy=%v ok=%v", prefix, KeysFor(prefix).Snapshot, p, legacy, ok)
		}
		if HasHashTag(prefix) {
			return // no separate legacy names
		}
		p, legacy, ok = PrefixOfSnapshotKey(LegacyKeysFor(prefix).Snapshot)
		if !ok || LegacyKeysFor(p) != LegacyKeysFor(prefix) {
			t.Fatalf("prefix %q: legacy key read back as %q legacy=%v ok=%v", prefix, p, legacy, ok)
		}
	})
}

// The default prefix used to have no hash tag, so on Redis Cluster the publish script
// (three keys) failed with CROSSSLOT. Every prefix the daemon accepts must publish
// and read back on a real cluster.
func TestPublishOnCluster(t *testing.T) {
	cl := testsvc.StartRedisCluster(t, 3)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	for i, prefix := range []string{DefaultPrefix("prod"), DefaultPrefix("b"), "{flagsync:tagged}", "app:{x}:y"} {
		if err := Publish(ctx, c, prefix, []byte(`{"flags":{}}`), "rev", int64(10+i)); err != nil {
			t.Fatalf("publish %q on a cluster: %v", prefix, err)
		}
		snap, rev, err := ReadWithRevision(ctx, c, prefix)
		if err != nil || string(snap) != `{"flags":{}}` || rev != "rev" {
			t.Fatalf("read %q on a cluster: %q %q %v", prefix, snap, rev, err)
		}
		if err := Publish(ctx, c, prefix, []byte(`x`), "old", 1); !errors.Is(err, ErrStale) {
			t.Fatalf("older publish on a cluster: %v, want ErrStale", err)
		}
		if _, _, err := ReadHeld(ctx, c, prefix); err != nil {
			t.Fatalf("ReadHeld %q on a cluster: %v", prefix, err)
		}
	}
	found, complete, err := FindSnapshots(ctx, c, FindLimits{})
	if err != nil || !complete || len(found) != 4 {
		t.Fatalf("FindSnapshots on a cluster = %v, %v, %v; want the 4 prefixes from every master", found, complete, err)
	}
}

func TestPublishLegacyMirror(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	prefix := DefaultPrefix("prod")
	legacy := LegacyKeysFor(prefix)

	// An old daemon (legacy names only) has published generation 50.
	if err := c.MSet(ctx, legacy.Snapshot, "old", legacy.Revision, "r-old", legacy.Generation, "50").Err(); err != nil {
		t.Fatal(err)
	}
	ps := c.Subscribe(ctx, legacy.Channel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	// Below the old daemon's generation: refused, nothing written, even though the
	// new names are empty.
	err := PublishWith(ctx, c, prefix, PublishOptions{Legacy: true}, []byte("new"), "r-new", 40)
	var stale *StaleError
	if !errors.As(err, &stale) || stale.Current != 50 {
		t.Fatalf("publish below the legacy generation: %v, want StaleError{50}", err)
	}
	if n, _ := c.Exists(ctx, KeysFor(prefix).Snapshot).Result(); n != 0 {
		t.Fatal("a refused publish wrote the new names")
	}
	if err := PublishWith(ctx, c, prefix, PublishOptions{Legacy: true}, []byte("new"), "r-new", 60); err != nil {
		t.Fatal(err)
	}
	for _, k := range []Keys{KeysFor(prefix), legacy} {
		vals, _ := c.MGet(ctx, k.Snapshot, k.Revision, k.Generation).Result()
		if fmt.Sprint(vals) != "[new r-new 60]" {
			t.Fatalf("%s: %v, want [new r-new 60]", k.Snapshot, vals)
		}
	}
	msg, err := ps.ReceiveMessage(ctx)
	if err != nil || msg.Payload != "r-new" {
		t.Fatalf("legacy channel: %v %v, want r-new", msg, err)
	}
	snap, gen, err := ReadLegacy(ctx, c, prefix)
	if err != nil || string(snap) != "new" || gen != 60 {
		t.Fatalf("ReadLegacy = %q %d %v", snap, gen, err)
	}
	// Fenced (a leader) and mirrored: the fence key sits between the two key sets.
	fenceKey := KeyBase(prefix) + ":fence"
	if err := PublishWith(ctx, c, prefix, PublishOptions{FenceKey: fenceKey, Fence: 7, Legacy: true}, []byte("led"), "r-led", 65); err != nil {
		t.Fatal(err)
	}
	err = PublishWith(ctx, c, prefix, PublishOptions{FenceKey: fenceKey, Fence: 6, Legacy: true}, []byte("old-leader"), "r-x", 66)
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("older fence: %v, want ErrFenced", err)
	}
	for _, k := range []Keys{KeysFor(prefix), legacy} {
		vals, _ := c.MGet(ctx, k.Snapshot, k.Generation).Result()
		if fmt.Sprint(vals) != "[led 65]" {
			t.Fatalf("%s after a fenced mirrored publish: %v", k.Snapshot, vals)
		}
	}
	// Without the mirror the legacy names stay where they were.
	if err := Publish(ctx, c, prefix, []byte("newer"), "r-3", 70); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Get(ctx, legacy.Snapshot).Result(); v != "led" {
		t.Fatalf("legacy snapshot = %q after a publish without the mirror", v)
	}
}

func TestFindSnapshotsBothShapesAndBounds(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	if err := Publish(ctx, c, DefaultPrefix("prod"), []byte("{}"), "r", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "flagsync:old:snapshot", "{}", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "unrelated", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	found, complete, err := FindSnapshots(ctx, c, FindLimits{})
	if err != nil || !complete || fmt.Sprint(found) != "[flagsync:old (old key names, flagsync:old:snapshot) flagsync:prod]" {
		t.Fatalf("FindSnapshots = %v, %v, %v", found, complete, err)
	}
	e := ExplainNoSnapshot(ctx, c, DefaultPrefix(""))
	if !errors.Is(e, ErrNoSnapshot) || !strings.Contains(e.Error(), `no snapshot under prefix "flagsync:default" (key {flagsync:default}:snapshot)`) ||
		!strings.Contains(e.Error(), "flagsync:prod") {
		t.Fatalf("ExplainNoSnapshot: %v", e)
	}

	// Many keys: the listing stops at MaxKeys and says it is incomplete.
	pipe := c.Pipeline()
	for i := range 5000 {
		pipe.Set(ctx, fmt.Sprintf("{flagsync:s%04d}:snapshot", i), "{}", 0)
		pipe.Set(ctx, fmt.Sprintf("other:%d", i), "x", 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	found, complete, err = FindSnapshots(ctx, c, FindLimits{MaxKeys: 20, Count: 100})
	if err != nil || complete || len(found) != 20 {
		t.Fatalf("bounded FindSnapshots: %d found, complete=%v, err=%v; want 20, false", len(found), complete, err)
	}
	if !strings.Contains((&NoSnapshotError{Prefix: "p", Present: found}).Error(), "and maybe more") {
		t.Fatal("an incomplete listing does not say so")
	}
	// The time bound ends the listing with what was found so far, not an error.
	_, _, err = FindSnapshots(ctx, c, FindLimits{Timeout: time.Nanosecond})
	if err != nil {
		t.Fatalf("FindSnapshots past its time bound: %v, want a partial result", err)
	}
}
