package provider

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/transport"
)

// syncBuf is a log sink safe for concurrent writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A reader left at the default prefix next to a daemon whose flag set is "prod" used
// to fail with only "no snapshot in redis"; it must name the prefixes present.
func TestRedisNoSnapshotListsPrefixes(t *testing.T) {
	checkNoLeak(t)
	_, c := newRedis(t)
	newSnapshot(1).with("a", true).publish(t, c, transport.DefaultPrefix("prod"))
	if err := c.Set(context.Background(), "flagsync:old:snapshot", "{}", 0).Err(); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuf{}
	p := NewRedis(c, "", WithInitTimeout(300*time.Millisecond), WithPollInterval(50*time.Millisecond),
		WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	err := startDirect(t, p)
	for _, want := range []string{`no snapshot under prefix "flagsync:default" (key {flagsync:default}:snapshot)`,
		"snapshots present under: flagsync:old (old key names, flagsync:old:snapshot), flagsync:prod"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("init error %v\nwant containing %q", err, want)
		}
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), strings.ReplaceAll(want, `"`, `\"`)) {
			t.Fatalf("logs do not warn %q:\n%s", want, logs)
		}
	}
	if !errors.Is(err, transport.ErrNoSnapshot) {
		t.Fatalf("init error %v does not wrap ErrNoSnapshot", err)
	}
	// The listing is made once per failure streak, not at every poll.
	if n := strings.Count(logs.String(), "snapshots present under"); n != 1 {
		t.Fatalf("listing logged %d times, want once:\n%s", n, logs)
	}
	// Once the daemon publishes there, the reader is served.
	newSnapshot(2).with("a", true).publish(t, c, transport.DefaultPrefix(""))
	eventually(t, 5*time.Second, "the default prefix served", func() bool { return p.Snapshot() != nil })
}

// A failover can lose a publish the old master acknowledged: Redis then holds an
// older generation. The reader must keep the newer snapshot, like the Python reader.
func TestRedisNeverGoesBackwards(t *testing.T) {
	checkNoLeak(t)
	_, c := newRedis(t)
	newSnapshot(5).with("a", 5).publish(t, c, testPrefix)
	p := NewRedis(c, testPrefix, WithPollInterval(20*time.Millisecond))
	if err := startDirect(t, p); err != nil {
		t.Fatal(err)
	}
	data, rev := newSnapshot(3).with("a", 3).encode(t)
	k := transport.KeysFor(testPrefix)
	if err := c.MSet(context.Background(), k.Snapshot, data, k.Revision, rev, k.Generation, 3).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // ten polls
	if v := intValue(p, "a"); v.Value != 5 || p.Snapshot().Generation() != 5 {
		t.Fatalf("a = %d at generation %d after Redis went back to 3; want 5", v.Value, p.Snapshot().Generation())
	}
	newSnapshot(6).with("a", 6).publish(t, c, testPrefix)
	eventually(t, 5*time.Second, "generation 6", func() bool { return intValue(p, "a").Value == 6 })
}

func TestRedisClusterReader(t *testing.T) {
	checkNoLeak(t)
	cl := testsvc.StartRedisCluster(t, 3)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()[:1]})
	t.Cleanup(func() { c.Close() })
	prefix := transport.DefaultPrefix("prod")
	newSnapshot(1).with("a", 1).publish(t, c, prefix)
	p := NewRedis(c, prefix, WithPollInterval(never))
	if err := startDirect(t, p); err != nil {
		t.Fatalf("init on a cluster: %v", err)
	}
	newSnapshot(2).with("a", 2).publish(t, c, prefix)
	nextEvent(t, p.EventChannel(), openfeature.ProviderConfigChange, eventWait) // Pub/Sub across the cluster
	if v := intValue(p, "a"); v.Value != 2 {
		t.Fatalf("a = %+v", v)
	}
	// A reader at another prefix lists what the cluster holds, from every master.
	q := NewRedis(c, "flagsync:other", WithInitTimeout(200*time.Millisecond))
	if err := startDirect(t, q); err == nil || !strings.Contains(err.Error(), "snapshots present under: flagsync:prod") {
		t.Fatalf("init at a wrong prefix on a cluster: %v", err)
	}
}

func TestRedisSentinelFailoverReader(t *testing.T) {
	checkNoLeak(t)
	s := testsvc.StartRedisSentinel(t)
	r := runSentinelFailover(t, s)
	t.Logf("reader caught up %s after the failover completed", r.catchUp)
}

// failoverRun is what one failover with a reader attached showed.
type failoverRun struct {
	catchUp time.Duration // failover complete → reader serves a generation published after it
}

// runSentinelFailover publishes generations continuously through Sentinel while a
// provider reads them, SIGKILLs the master, and checks: the reader's generation
// never goes back, it keeps serving during the outage, Redis never holds less than
// what was replicated before the kill, and the reader catches up after the failover.
func runSentinelFailover(t testing.TB, s *testsvc.RedisSentinel) failoverRun {
	t.Helper()
	const prefix = "flagsync:failover"
	ctx := context.Background()
	newClient := func() *redis.Client {
		c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.SentinelAddrs(),
			DialTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
		t.Cleanup(func() { c.Close() })
		return c
	}
	pub, rd, watch := newClient(), newClient(), newClient()

	// Generations are taken from a counter above anything an earlier run published.
	var gen atomic.Int64
	g0, _ := transport.ReadGeneration(ctx, pub, prefix)
	gen.Store(g0)
	var replicated atomic.Int64 // newest generation WAIT confirmed on the replica
	publishOne := func() (int64, bool) {
		g := gen.Add(1)
		data, rev := newSnapshot(g).with("counter", g).encode(t)
		if err := transport.Publish(ctx, pub, prefix, data, rev, g); err != nil {
			return g, false
		}
		if n, err := pub.Wait(ctx, 1, 200*time.Millisecond).Result(); err == nil && n >= 1 {
			replicated.Store(g)
		}
		return g, true
	}
	if _, ok := publishOne(); !ok {
		t.Fatal("first publish through sentinel failed")
	}
	p := NewRedis(rd, prefix)
	if err := startDirect(t, p); err != nil {
		t.Fatalf("init through sentinel: %v", err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var (
		mu            sync.Mutex
		firstAfter    int64 // first generation published after the failover completed
		failoverDone  time.Time
		readerBack    []string
		redisBack     []string
		notServing    int
		lastReaderGen int64
	)
	wg.Go(func() { // the daemon: publish every 10 ms, failures and all
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			g, ok := publishOne()
			mu.Lock()
			if ok && !failoverDone.IsZero() && firstAfter == 0 {
				firstAfter = g
			}
			mu.Unlock()
		}
	})
	var floor atomic.Int64 // Redis must never hold less than this (set at the kill)
	wg.Go(func() {         // observers: reader every 2 ms, Redis every 10 ms
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			snap := p.Snapshot()
			mu.Lock()
			if snap == nil || intValue(p, "counter").Value != snap.Generation() {
				notServing++
			} else if snap.Generation() < lastReaderGen {
				readerBack = append(readerBack, time.Now().Format("15:04:05.000"))
			} else {
				lastReaderGen = snap.Generation()
			}
			mu.Unlock()
			if i%5 == 0 {
				if g, err := transport.ReadGeneration(ctx, watch, prefix); err == nil && g != 0 && g < floor.Load() {
					mu.Lock()
					redisBack = append(redisBack, time.Now().Format("15:04:05.000"))
					mu.Unlock()
				}
			}
		}
	})

	time.Sleep(300 * time.Millisecond) // mid-stream
	floor.Store(replicated.Load())
	old := s.KillMaster(t)
	s.WaitFailover(t, old, 30*time.Second)
	mu.Lock()
	failoverDone = time.Now()
	mu.Unlock()
	var caughtUp time.Time
	deadline := time.Now().Add(60 * time.Second)
	for caughtUp.IsZero() && time.Now().Before(deadline) {
		mu.Lock()
		target := firstAfter
		mu.Unlock()
		if snap := p.Snapshot(); target != 0 && snap != nil && snap.Generation() >= target {
			caughtUp = time.Now()
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()

	if floor.Load() == 0 {
		t.Errorf("nothing was replicated before the kill: the Redis check would be empty")
	}
	if caughtUp.IsZero() {
		t.Fatalf("reader did not catch up within 60 s of the failover (serving generation %d, first published after %d)",
			p.Snapshot().Generation(), firstAfter)
	}
	if len(readerBack) > 0 {
		t.Errorf("reader generation went backwards at %v", readerBack)
	}
	if len(redisBack) > 0 {
		t.Errorf("Redis held less than the replicated generation %d at %v", floor.Load(), redisBack)
	}
	if notServing > 0 {
		t.Errorf("reader did not serve its last snapshot %d times during the failover", notServing)
	}
	s.RestartAsReplica(t, old)
	return failoverRun{catchUp: caughtUp.Sub(failoverDone)}
}
