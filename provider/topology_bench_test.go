package provider

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/transport"
)

// BenchmarkRedisFailoverCatchUp measures how long after a Sentinel failover
// completes (the sentinels name the promoted replica and it answers as master) a
// reader serves a generation published after it; the goal is 5 s. Each op kills the
// master once (runSentinelFailover checks the reader and Redis never go back).
func BenchmarkRedisFailoverCatchUp(b *testing.B) {
	s := testsvc.StartRedisSentinel(b)
	var lat []time.Duration
	for b.Loop() {
		lat = append(lat, runSentinelFailover(b, s).catchUp)
	}
	testsvc.ReportLatencies(b, "catchup-", lat)
}

// BenchmarkRedisTopology measures, per topology, one publish (the daemon's script),
// one read (snapshot+revision MGET, a 100-flag snapshot) and the propagation from
// publish to a reader's PROVIDER_CONFIGURATION_CHANGED through Pub/Sub.
func BenchmarkRedisTopology(b *testing.B) {
	for _, top := range []struct {
		name  string
		start func(b *testing.B) redis.UniversalClient
	}{
		{"single", func(b *testing.B) redis.UniversalClient {
			r := testsvc.StartRedis(b)
			return redis.NewClient(&redis.Options{Addr: r.Addr})
		}},
		{"sentinel", func(b *testing.B) redis.UniversalClient {
			s := testsvc.StartRedisSentinel(b)
			return redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.SentinelAddrs()})
		}},
		{"cluster", func(b *testing.B) redis.UniversalClient {
			c := testsvc.StartRedisCluster(b, 3)
			return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
		}},
	} {
		b.Run(top.name, func(b *testing.B) {
			c := top.start(b)
			b.Cleanup(func() { c.Close() })
			ctx := context.Background()
			const prefix = "flagsync:bench"
			snap := func(i int) *testSnapshot {
				s := newSnapshot(int64(i))
				for k := range 100 {
					s.with(fmt.Sprintf("flag_%03d", k), k)
				}
				return s.with("counter", i)
			}
			snap(1).publish(b, c, prefix)
			p := NewRedis(c, prefix)
			if err := startDirect(b, p); err != nil {
				b.Fatal(err)
			}
			var pubLat, readLat, propLat []time.Duration
			gen := 1
			for b.Loop() {
				gen++
				data, rev := snap(gen).encode(b)
				start := time.Now()
				if err := transport.Publish(ctx, c, prefix, data, rev, int64(gen)); err != nil {
					b.Fatal(err)
				}
				pubLat = append(pubLat, time.Since(start))
				select {
				case ev := <-p.EventChannel():
					if ev.EventType != openfeature.ProviderConfigChange {
						b.Fatalf("event %s: %s", ev.EventType, ev.Message)
					}
				case <-time.After(10 * time.Second):
					b.Fatalf("generation %d not seen within 10s", gen)
				}
				propLat = append(propLat, time.Since(start))
				start = time.Now()
				if _, _, err := transport.ReadWithRevision(ctx, c, prefix); err != nil {
					b.Fatal(err)
				}
				readLat = append(readLat, time.Since(start))
			}
			testsvc.ReportLatencies(b, "publish-", pubLat)
			testsvc.ReportLatencies(b, "read-", readLat)
			testsvc.ReportLatencies(b, "propagate-", propLat)
		})
	}
}
