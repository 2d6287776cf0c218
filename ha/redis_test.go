package ha_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/ha"
	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/transport"
)

const testTTL = 1500 * time.Millisecond

// member is one replica under test: its elector, the client it uses and the events
// its callbacks saw.
type member struct {
	name    string
	client  *redis.Client
	el      ha.Elector
	cancel  context.CancelFunc
	done    chan struct{}
	elected chan int64
	lost    chan struct{}
}

func startRedisMember(t *testing.T, name string, r *testsvc.Redis, prefix string) *member {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	el, err := ha.NewRedis(ha.RedisConfig{Client: c, Prefix: prefix, TTL: testTTL})
	if err != nil {
		t.Fatal(err)
	}
	return runMember(t, name, c, el)
}

func runMember(t *testing.T, name string, c *redis.Client, el ha.Elector) *member {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{name: name, client: c, el: el, cancel: cancel, done: make(chan struct{}),
		elected: make(chan int64, 16), lost: make(chan struct{}, 16)}
	go func() {
		defer close(m.done)
		err := el.Run(ctx,
			func(ctx context.Context, fence int64) {
				m.elected <- fence
				<-ctx.Done()
			},
			func() { m.lost <- struct{}{} })
		if err != nil {
			t.Errorf("%s: Run: %v", name, err)
		}
	}()
	t.Cleanup(m.stop)
	return m
}

func (m *member) stop() {
	m.cancel()
	<-m.done
}

// waitLeader waits until exactly one of ms is leader and returns it with its fence.
func waitLeader(t *testing.T, within time.Duration, ms ...*member) (*member, int64) {
	t.Helper()
	cases := make(chan struct {
		m     *member
		fence int64
	}, len(ms))
	var once sync.Once
	stop := make(chan struct{})
	defer once.Do(func() { close(stop) })
	for _, m := range ms {
		go func() {
			select {
			case f := <-m.elected:
				cases <- struct {
					m     *member
					fence int64
				}{m, f}
			case <-stop:
			}
		}()
	}
	select {
	case c := <-cases:
		if !c.m.el.IsLeader() || c.m.el.Fence() != c.fence {
			t.Fatalf("%s elected with fence %d but IsLeader=%v Fence=%d", c.m.name, c.fence, c.m.el.IsLeader(), c.m.el.Fence())
		}
		return c.m, c.fence
	case <-time.After(within):
		t.Fatalf("no leader elected within %s", within)
	}
	return nil, 0
}

func countLeaders(ms ...*member) int {
	n := 0
	for _, m := range ms {
		if m.el.IsLeader() {
			n++
		}
	}
	return n
}

func TestRedisExactlyOneLeader(t *testing.T) {
	r := testsvc.StartRedis(t)
	a := startRedisMember(t, "a", r, "flagsync:one")
	b := startRedisMember(t, "b", r, "flagsync:one")
	leader, fence := waitLeader(t, 5*time.Second, a, b)
	if fence <= 0 {
		t.Fatalf("fence %d, want > 0", fence)
	}
	// Over several renew periods the leader keeps its lease and the other stays standby.
	for end := time.Now().Add(2 * testTTL); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if n := countLeaders(a, b); n != 1 {
			t.Fatalf("%d leaders, want exactly 1", n)
		}
		if !leader.el.IsLeader() {
			t.Fatalf("leader %s lost its lease while healthy", leader.name)
		}
	}
	other := a
	if leader == a {
		other = b
	}
	if other.el.Fence() != 0 {
		t.Fatalf("standby reports fence %d, want 0", other.el.Fence())
	}
}

func TestRedisFailoverAfterCrash(t *testing.T) {
	r := testsvc.StartRedis(t)
	a := startRedisMember(t, "a", r, "flagsync:crash")
	b := startRedisMember(t, "b", r, "flagsync:crash")
	old, oldFence := waitLeader(t, 5*time.Second, a, b)
	standby := a
	if old == a {
		standby = b
	}
	// A crash: the leader's connection dies first, so it can neither renew nor release.
	crashed := time.Now()
	old.client.Close()
	old.stop()
	_, newFence := waitLeader(t, testTTL+2*time.Second, standby)
	t.Logf("failover after crash took %s (TTL %s)", time.Since(crashed), testTTL)
	if newFence <= oldFence {
		t.Fatalf("new fence %d not greater than old fence %d", newFence, oldFence)
	}
}

func TestRedisGracefulStopHandsOver(t *testing.T) {
	r := testsvc.StartRedis(t)
	a := startRedisMember(t, "a", r, "flagsync:graceful")
	b := startRedisMember(t, "b", r, "flagsync:graceful")
	old, _ := waitLeader(t, 5*time.Second, a, b)
	standby := a
	if old == a {
		standby = b
	}
	old.stop()
	select {
	case <-old.lost:
	default:
		t.Fatal("onLost not called on graceful stop")
	}
	if old.el.IsLeader() {
		t.Fatal("stopped elector still reports leader")
	}
	// The lease was released, so the standby takes over at its next attempt.
	waitLeader(t, testTTL, standby)
}

func TestRedisPartitionStepsDown(t *testing.T) {
	r := testsvc.StartRedis(t)
	a := startRedisMember(t, "a", r, "flagsync:partition")
	leader, _ := waitLeader(t, 5*time.Second, a)
	cut := time.Now()
	r.Stop()
	select {
	case <-leader.lost:
		t.Logf("stepped down %s after losing redis (TTL %s)", time.Since(cut), testTTL)
	case <-time.After(testTTL + time.Second):
		t.Fatalf("leader did not step down within TTL after redis went away")
	}
	if leader.el.IsLeader() || leader.el.Fence() != 0 {
		t.Fatalf("after step-down IsLeader=%v Fence=%d", leader.el.IsLeader(), leader.el.Fence())
	}
	// Redis comes back (empty): the replica is elected again with a larger fence, since
	// fences never go below the server clock in milliseconds.
	r.Start()
	_, fence := waitLeader(t, 5*time.Second, a)
	if fence < time.Now().Add(-time.Hour).UnixMilli() {
		t.Fatalf("fence %d after redis data loss is not clock-based", fence)
	}
}

func TestFencedPublishRefusesOldLeader(t *testing.T) {
	r := testsvc.StartRedis(t)
	ctx := context.Background()
	prefix := "flagsync:fenced"
	a := startRedisMember(t, "a", r, prefix)
	b := startRedisMember(t, "b", r, prefix)
	old, oldFence := waitLeader(t, 5*time.Second, a, b)
	standby := a
	if old == a {
		standby = b
	}
	pub := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { pub.Close() })
	if err := ha.FencedPublish(ctx, pub, prefix, oldFence, []byte(`{"flags":{}}`), "rev-1", 1); err != nil {
		t.Fatalf("leader publish: %v", err)
	}

	// The old leader freezes (no renewals); the standby takes over.
	old.client.Close()
	old.stop()
	_, newFence := waitLeader(t, testTTL+2*time.Second, standby)
	if err := ha.FencedPublish(ctx, pub, prefix, newFence, []byte(`{"flags":{"new":{}}}`), "rev-2", 2); err != nil {
		t.Fatalf("new leader publish: %v", err)
	}

	// The old leader wakes up and publishes a higher generation with its old fence.
	err := ha.FencedPublish(ctx, pub, prefix, oldFence, []byte(`{"flags":{"zombie":{}}}`), "rev-z", 99)
	var fe *ha.FencedError
	if !errors.Is(err, ha.ErrFenced) || !errors.As(err, &fe) || fe.Current != newFence || fe.Ours != oldFence {
		t.Fatalf("old leader publish: err=%v, want FencedError{Ours:%d Current:%d}", err, oldFence, newFence)
	}
	got, err := transport.Read(ctx, pub, prefix)
	if err != nil || string(got) != `{"flags":{"new":{}}}` {
		t.Fatalf("snapshot after refused publish = %q, %v; want the new leader's", got, err)
	}
	if gen, _ := transport.ReadGeneration(ctx, pub, prefix); gen != 2 {
		t.Fatalf("generation %d, want 2", gen)
	}

	// The generation rule still applies to the current leader.
	err = ha.FencedPublish(ctx, pub, prefix, newFence, []byte(`{}`), "rev-old", 2)
	var se *transport.StaleError
	if !errors.Is(err, transport.ErrStale) || !errors.As(err, &se) || se.Current != 2 {
		t.Fatalf("stale publish: err=%v, want StaleError{Current:2}", err)
	}
}

func TestFencedPublishRecordsNewerFence(t *testing.T) {
	// A Consul-elected leader's fence is only known to Redis through its publishes.
	r := testsvc.StartRedis(t)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	prefix := "flagsync:consulfence"
	if err := ha.FencedPublish(ctx, c, prefix, 100, []byte(`{"a":1}`), "r1", 1); err != nil {
		t.Fatal(err)
	}
	// Even a stale publish of the new leader records its fence.
	if err := ha.FencedPublish(ctx, c, prefix, 200, []byte(`{"a":2}`), "r2", 1); !errors.Is(err, transport.ErrStale) {
		t.Fatalf("stale publish with newer fence: %v", err)
	}
	if err := ha.FencedPublish(ctx, c, prefix, 100, []byte(`{"a":3}`), "r3", 5); !errors.Is(err, ha.ErrFenced) {
		t.Fatalf("publish with superseded fence: %v, want ErrFenced", err)
	}
	if f, _ := c.Get(ctx, ha.KeysFor(prefix).Fence).Int64(); f != 200 {
		t.Fatalf("stored fence %d, want 200", f)
	}
}

func TestNewRedisValidates(t *testing.T) {
	if _, err := ha.NewRedis(ha.RedisConfig{Prefix: "x"}); err == nil {
		t.Fatal("no client: want error")
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := ha.NewRedis(ha.RedisConfig{Client: c}); err == nil {
		t.Fatal("no prefix: want error")
	}
}

func TestPublishAsLeader(t *testing.T) {
	r := testsvc.StartRedis(t)
	ctx := context.Background()
	prefix := "flagsync:asleader"
	a := startRedisMember(t, "a", r, prefix)
	b := startRedisMember(t, "b", r, prefix)
	leader, _ := waitLeader(t, 5*time.Second, a, b)
	standby := a
	if leader == a {
		standby = b
	}
	if err := ha.PublishAsLeader(ctx, standby.el, standby.client, prefix, false, []byte(`{"s":1}`), "rs", 5); !errors.Is(err, ha.ErrNotLeader) {
		t.Fatalf("standby publish: %v, want ErrNotLeader", err)
	}
	if err := ha.PublishAsLeader(ctx, leader.el, leader.client, prefix, false, []byte(`{"l":1}`), "rl", 1); err != nil {
		t.Fatalf("leader publish: %v", err)
	}
	if got, _ := transport.Read(ctx, leader.client, prefix); string(got) != `{"l":1}` {
		t.Fatalf("snapshot %q, want the leader's", got)
	}
}

func TestRedisLeaseTakenAwayStepsDown(t *testing.T) {
	// An operator (or a bug) deletes the lease: the leader notices at its next renewal
	// instead of leading on without a lease.
	r := testsvc.StartRedis(t)
	prefix := "flagsync:deleted"
	a := startRedisMember(t, "a", r, prefix)
	waitLeader(t, 5*time.Second, a)
	admin := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { admin.Close() })
	if err := admin.Set(context.Background(), ha.KeysFor(prefix).Leader, "someone-else", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.lost:
	case <-time.After(testTTL):
		t.Fatal("leader kept leading after its lease was taken over")
	}
	if a.el.IsLeader() {
		t.Fatal("IsLeader after the lease was taken")
	}
	// Its release must not delete the other holder's lease.
	if v, _ := admin.Get(context.Background(), ha.KeysFor(prefix).Leader).Result(); v != "someone-else" {
		t.Fatalf("lease value %q after step-down, want the other holder's", v)
	}
}
