package testsvc

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedisClusterServesEverySlot(t *testing.T) {
	c := StartRedisCluster(t, 3)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer cc.Close()
	ctx := context.Background()
	// Keys spread over all masters: each must be written and read back.
	for i := range 50 {
		k := fmt.Sprintf("k%d", i)
		if err := cc.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
	var masters atomic.Int32 // ForEachMaster calls concurrently
	_ = cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		masters.Add(1)
		return nil
	})
	if masters.Load() != 3 {
		t.Fatalf("%d masters, want 3", masters.Load())
	}
}

func TestRedisSentinelFailsOver(t *testing.T) {
	s := StartRedisSentinel(t)
	fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.SentinelAddrs()})
	defer fc.Close()
	ctx := context.Background()
	if err := fc.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("set through sentinel: %v", err)
	}
	old := s.KillMaster(t)
	now := s.WaitFailover(t, old, 30*time.Second)
	if now == old {
		t.Fatal("the killed master is still named")
	}
	if err := fc.Set(ctx, "k2", "v", 0).Err(); err != nil {
		t.Fatalf("set after failover: %v", err)
	}
}
