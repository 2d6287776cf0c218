package provider_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/provider"
	"github.com/flagsync/flagsync/transport"
)

func ExampleNewFile() {
	dir, _ := os.MkdirTemp("", "flagsync-example-*")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "flags.json") // in production: the daemon's file output
	_ = transport.WriteFileAtomic(path, []byte(`{"flags": {"beta_mode": {"state": "ENABLED",
		"variants": {"on": true, "off": false}, "defaultVariant": "off",
		"targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", null]}}}}`), 0o644)

	if err := openfeature.SetProviderAndWait(provider.NewFile(path)); err != nil {
		fmt.Println("flags not ready, serving defaults:", err)
	}
	defer openfeature.Shutdown()
	client := openfeature.NewDefaultClient()

	staff := openfeature.NewEvaluationContext("user-1", map[string]any{"email": "ann@example.com"})
	guest := openfeature.NewEvaluationContext("user-2", map[string]any{"email": "bob@elsewhere.org"})
	for _, ec := range []openfeature.EvaluationContext{staff, guest} {
		d, _ := client.BooleanValueDetails(context.Background(), "beta_mode", false, ec)
		fmt.Println(ec.TargetingKey(), d.Value, d.Variant, d.Reason)
	}
	// Output:
	// user-1 true on TARGETING_MATCH
	// user-2 false off DEFAULT
}

// The provider reads from any go-redis UniversalClient: one server, a master found
// through Sentinel (failovers are followed), or Redis Cluster. The prefix is the
// daemon's: transport.DefaultPrefix(flagSetId) unless outputs.redis.prefix says
// otherwise.
func ExampleNewRedis() {
	// One server:
	single := redis.NewClient(&redis.Options{Addr: "redis:6379"})
	// A Sentinel-managed master (same settings as the daemon's outputs.redis.sentinel):
	sentinel := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    "flagsync",
		SentinelAddrs: []string{"sentinel-0:26379", "sentinel-1:26379", "sentinel-2:26379"},
	})
	// Redis Cluster from seed nodes:
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"redis-0:6379", "redis-1:6379"}})

	for _, c := range []redis.UniversalClient{single, sentinel, cluster} {
		p := provider.NewRedis(c, transport.DefaultPrefix("prod"))
		_ = p // openfeature.SetProviderAndWait(p); close c after p.Shutdown()
		_ = c.Close()
	}
}
