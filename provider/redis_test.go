package provider

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/transport"
)

const testPrefix = "{flagsync:test}"

// newRedis starts a real redis-server and a client for it; the client is closed
// after the provider's shutdown (cleanups run last-in first-out).
func newRedis(t testing.TB) (*testsvc.Redis, redis.UniversalClient) {
	t.Helper()
	srv := testsvc.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	return srv, c
}

func TestRedisThroughClient(t *testing.T) {
	checkNoLeak(t)
	_, c := newRedis(t)
	newSnapshot(1).with("a", true).with("n", 3).publish(t, c, testPrefix)

	api := isolated.NewAPI()
	t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	changed := make(chan openfeature.EventDetails, 8)
	onChange := func(d openfeature.EventDetails) { changed <- d }
	api.AddHandler(openfeature.ProviderConfigChange, &onChange)
	if err := api.SetProviderAndWait(context.Background(), NewRedis(c, testPrefix, WithPollInterval(never))); err != nil {
		t.Fatalf("SetProviderAndWait: %v", err)
	}
	client := api.NewClient()
	ctx := context.Background()
	d, err := client.BooleanValueDetails(ctx, "a", false, openfeature.EvaluationContext{})
	if err != nil || !d.Value || d.FlagMetadata["flagSetId"] != "test" {
		t.Fatalf("a = %+v, %v", d, err)
	}

	// Only Pub/Sub can deliver this: the poll interval is an hour.
	newSnapshot(2).with("a", false).with("n", 3).publish(t, c, testPrefix)
	select {
	case ev := <-changed:
		if fmt.Sprint(ev.FlagChanges) != "[a]" {
			t.Fatalf("FlagChanges = %v, want [a]", ev.FlagChanges)
		}
	case <-time.After(eventWait):
		t.Fatal("no PROVIDER_CONFIGURATION_CHANGED after a publish")
	}
	if v, err := client.BooleanValue(ctx, "a", true, openfeature.EvaluationContext{}); err != nil || v {
		t.Fatalf("a = %v, %v after publish, want false", v, err)
	}
}

// TestRedisPollCatchesMissedMessage writes the keys without PUBLISH, as if the
// at-most-once message had been lost: the revision poll must find the change.
func TestRedisPollCatchesMissedMessage(t *testing.T) {
	checkNoLeak(t)
	_, c := newRedis(t)
	newSnapshot(1).with("a", 1).publish(t, c, testPrefix)
	p := NewRedis(c, testPrefix, WithPollInterval(30*time.Millisecond))
	if err := startDirect(t, p); err != nil {
		t.Fatalf("init: %v", err)
	}
	data, rev := newSnapshot(2).with("a", 2).encode(t)
	k := transport.KeysFor(testPrefix)
	if err := c.MSet(context.Background(), k.Snapshot, data, k.Revision, rev, k.Generation, 2).Err(); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, p.EventChannel(), openfeature.ProviderConfigChange, eventWait)
	if v := intValue(p, "a"); v.Value != 2 {
		t.Fatalf("a = %+v, want 2", v)
	}
}

func TestRedisBadSnapshotKeepsLastGood(t *testing.T) {
	checkNoLeak(t)
	_, c := newRedis(t)
	newSnapshot(1).with("a", 1).publish(t, c, testPrefix)
	p := NewRedis(c, testPrefix, WithPollInterval(never))
	if err := startDirect(t, p); err != nil {
		t.Fatalf("init: %v", err)
	}
	if err := transport.Publish(context.Background(), c, testPrefix, []byte("not json"), "bad", 2); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, p.EventChannel(), openfeature.ProviderError, eventWait)
	if v := intValue(p, "a"); v.Value != 1 {
		t.Fatalf("a = %+v after a bad publish, want the last good value 1", v)
	}
	newSnapshot(3).with("a", 3).publish(t, c, testPrefix)
	nextEvent(t, p.EventChannel(), openfeature.ProviderReady, eventWait)
	eventually(t, eventWait, "a == 3", func() bool { return intValue(p, "a").Value == 3 })
}

// TestRedisKillAndRestart kills redis-server: the provider keeps serving and goes
// STALE. After the restart (the new server is empty) a snapshot is published
// before the provider's next poll; the re-subscription's re-read or the poll must
// pick it up: READY again with the new values.
func TestRedisKillAndRestart(t *testing.T) {
	checkNoLeak(t)
	srv, c := newRedis(t)
	newSnapshot(1).with("a", 1).with("b", 1).publish(t, c, testPrefix)
	p := NewRedis(c, testPrefix, WithPollInterval(100*time.Millisecond), WithStaleAfter(300*time.Millisecond))
	if err := startDirect(t, p); err != nil {
		t.Fatalf("init: %v", err)
	}

	srv.Stop()
	nextEvent(t, p.EventChannel(), openfeature.ProviderStale, eventWait)
	if v := intValue(p, "a"); v.Value != 1 || v.Error() != nil {
		t.Fatalf("a = %+v while redis is down, want the last good value", v)
	}

	srv.Start()
	newSnapshot(2).with("a", 2).with("b", 1).publish(t, c, testPrefix)
	nextEvent(t, p.EventChannel(), openfeature.ProviderReady, eventWait)
	eventually(t, eventWait, "a == 2 after the restart", func() bool { return intValue(p, "a").Value == 2 })
	if p.Status() != openfeature.ReadyState {
		t.Fatalf("status = %s, want READY", p.Status())
	}
}

func TestRedisInitUnreachableThenReady(t *testing.T) {
	checkNoLeak(t)
	srv, c := newRedis(t)
	srv.Stop()
	p := NewRedis(c, testPrefix, WithInitTimeout(300*time.Millisecond), WithPollInterval(50*time.Millisecond))
	start := time.Now()
	if err := startDirect(t, p); err == nil {
		t.Fatal("init succeeded with redis down")
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Fatalf("init blocked %s, want about the 300ms init timeout", waited)
	}
	r := p.BooleanEvaluation(context.Background(), "a", true, nil)
	if !r.Value || r.ResolutionDetail().ErrorCode != openfeature.ProviderNotReadyCode {
		t.Fatalf("evaluation before a snapshot = %+v, want the default with PROVIDER_NOT_READY", r)
	}
	srv.Start()
	newSnapshot(1).with("a", false).publish(t, c, testPrefix)
	nextEvent(t, p.EventChannel(), openfeature.ProviderReady, eventWait)
	if r := p.BooleanEvaluation(context.Background(), "a", true, nil); r.Value || r.Error() != nil {
		t.Fatalf("a = %+v after redis came up, want false", r)
	}
}

func TestRedisHotReload(t *testing.T) {
	checkNoLeak(t)
	_, c := newRedis(t)
	hotReloadSnapshot(1).publish(t, c, testPrefix)
	p := NewRedis(c, testPrefix, WithPollInterval(50*time.Millisecond))
	if err := startDirect(t, p); err != nil {
		t.Fatalf("init: %v", err)
	}
	drainEvents(t, p)

	const n = 1000
	type pub struct {
		data []byte
		rev  string
	}
	pubs := make([]pub, n+1)
	for i := 2; i <= n; i++ {
		pubs[i].data, pubs[i].rev = hotReloadSnapshot(i).encode(t)
	}
	runEvaluators(t, p, n, func() {
		ctx := context.Background()
		for i := 2; i <= n; i++ {
			if err := transport.Publish(ctx, c, testPrefix, pubs[i].data, pubs[i].rev, int64(i)); err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
		}
	})
}
