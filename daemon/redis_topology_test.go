package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/transport"
)

func redisTopologyHarness(t *testing.T, redisYAML string) *harness {
	t.Helper()
	h := bareHarness(t, "flags.json", "a", "b")
	cfg := fmt.Sprintf("flagSetId: prod\nsources:\n  - {name: git, type: file, path: %q}\noutputs:\n  file: {path: %q}\n  redis:\n%s",
		h.flags, h.out, redisYAML)
	h.d = h.build(cfg, hopts{})
	return h
}

func TestRedisClusterOutput(t *testing.T) {
	cl := testsvc.StartRedisCluster(t, 3)
	h := redisTopologyHarness(t, fmt.Sprintf("    cluster: {addresses: [%q]}\n", cl.Addrs()[0]))
	if rep := h.mustSync(); rep.Result != "published" {
		t.Fatalf("first sync on a cluster: %+v (status %+v)", rep, redisStatus(t, h.d))
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	t.Cleanup(func() { cc.Close() })
	ctx := context.Background()
	snap, rev, err := transport.ReadWithRevision(ctx, cc, "flagsync:prod")
	if err != nil || !strings.Contains(string(snap), `"a"`) || rev == "" {
		t.Fatalf("read the daemon's snapshot from the cluster: %v", err)
	}
	st := redisStatus(t, h.d)
	if !st.UpToDate || st.Target != "cluster "+cl.Addrs()[0]+" prefix flagsync:prod" {
		t.Fatalf("status %+v", st)
	}
	// No old names on a cluster: they would span slots.
	if n, _ := cc.Exists(ctx, transport.LegacyKeysFor("flagsync:prod").Snapshot).Result(); n != 0 {
		t.Fatal("legacy names written on a cluster")
	}
}

// Kill the master mid-stream: the daemon's publishes fail while the sentinels fail
// over, then land on the promoted replica; Redis never goes backwards.
func TestRedisSentinelOutputFailover(t *testing.T) {
	s := testsvc.StartRedisSentinel(t)
	h := redisTopologyHarness(t, fmt.Sprintf("    sentinel: {masterName: %s, addresses: [%s]}\n",
		s.MasterName, strings.Join(s.SentinelAddrs(), ", ")))
	ctx := context.Background()
	fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.SentinelAddrs(), MaxRetries: -1})
	t.Cleanup(func() { fc.Close() })
	gen := func() int64 {
		g, err := transport.ReadGeneration(ctx, fc, "flagsync:prod")
		if err != nil {
			return -1
		}
		return g
	}
	if rep := h.mustSync(); rep.Result != "published" {
		t.Fatalf("first sync through sentinel: %+v", rep)
	}
	// Wait for the replica to hold it too, so a failover does not lose it.
	waitUntil(t, 10*time.Second, "replica holds the snapshot", func() bool {
		rc := redis.NewClient(&redis.Options{Addr: s.Data[1].Addr})
		defer rc.Close()
		g, _ := transport.ReadGeneration(ctx, rc, "flagsync:prod")
		return g > 0 && g == gen()
	})
	before := gen()
	if !st(t, h).UpToDate || !strings.HasPrefix(st(t, h).Target, "sentinel master "+s.MasterName+" via 127.0.0.1:") {
		t.Fatalf("status %+v", st(t, h))
	}

	old := s.KillMaster(t)
	h.writeFlags(flagYAML("a", "b", "c"))
	rep, _ := h.sync(false)
	if rep.Result == "published" {
		t.Fatalf("a sync with the master dead reported %+v", rep)
	}
	if redisStatus(t, h.d).UpToDate {
		t.Fatal("redis output up to date while its master is dead")
	}
	s.WaitFailover(t, old, 30*time.Second)
	waitUntil(t, 30*time.Second, "the daemon's snapshot on the promoted master", func() bool {
		_, _ = h.sync(false) // the catch-up also retries; a sync is the quicker way here
		return redisStatus(t, h.d).UpToDate
	})
	after := gen()
	if after <= before {
		t.Fatalf("generation %d after failover, %d before: went backwards or did not move", after, before)
	}
	snap, err := transport.Read(ctx, fc, "flagsync:prod")
	if err != nil || !strings.Contains(string(snap), `"c"`) {
		t.Fatalf("promoted master holds %s, %v; want the new flags", snap, err)
	}
}

func st(t *testing.T, h *harness) OutputStatus { t.Helper(); return redisStatus(t, h.d) }

func waitUntil(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not after %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An upgraded daemon keeps readers of the old key names served (legacyKeys, on by
// default off-cluster) and continues above the generation the old daemon wrote.
func TestRedisLegacyKeysDuringUpgrade(t *testing.T) {
	r := testsvc.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rc.Close() })
	ctx := context.Background()
	old := transport.LegacyKeysFor("flagsync:prod")
	oldGen := time.Now().Add(time.Hour).UnixMilli() // the old daemon's clock ran ahead
	if err := rc.MSet(ctx, old.Snapshot, `{"flags":{}}`, old.Revision, "r-old", old.Generation, oldGen).Err(); err != nil {
		t.Fatal(err)
	}
	h := redisTopologyHarness(t, fmt.Sprintf("    url: %q\n", r.URL()))
	if rep := h.mustSync(); rep.Result != "published" {
		t.Fatalf("sync: %+v", rep)
	}
	for _, k := range []transport.Keys{transport.KeysFor("flagsync:prod"), old} {
		vals, err := rc.MGet(ctx, k.Snapshot, k.Generation).Result()
		if err != nil || vals[0] == nil || !strings.Contains(vals[0].(string), `"a"`) {
			t.Fatalf("%s: %v %v", k.Snapshot, vals, err)
		}
		var g int64
		fmt.Sscan(vals[1].(string), &g)
		if g <= oldGen {
			t.Fatalf("%s: generation %d, not above the old daemon's %d", k.Generation, g, oldGen)
		}
	}

	// legacyKeys: false leaves the old names alone.
	r2 := testsvc.StartRedis(t)
	h2 := redisTopologyHarness(t, fmt.Sprintf("    url: %q\n    legacyKeys: false\n", r2.URL()))
	rc2 := redis.NewClient(&redis.Options{Addr: r2.Addr})
	t.Cleanup(func() { rc2.Close() })
	h2.mustSync()
	if n, _ := rc2.Exists(ctx, old.Snapshot).Result(); n != 0 {
		ks, _ := rc2.Keys(ctx, "*").Result()
		t.Fatalf("legacyKeys: false wrote the old names: %v %v", ks, h2.d.Status().Outputs)
	}
}

func TestRedisTopologyConfigErrors(t *testing.T) {
	base := "flagSetId: x\nsources: [{name: a, type: file, path: p}]\noutputs:\n  redis: "
	for _, c := range []struct{ yaml, want string }{
		{`{}`, "outputs.redis: one of url (one server), sentinel or cluster is required"},
		{`{url: "redis://:pw@h:6379/0", cluster: {addresses: [h:1]}}`, "outputs.redis: set only one of url, sentinel and cluster"},
		{`{sentinel: {addresses: [h:26379], password: pw}}`, "outputs.redis.sentinel.masterName: required"},
		{`{sentinel: {masterName: m, addresses: []}}`, "outputs.redis.sentinel.addresses: at least one"},
		{`{sentinel: {masterName: m, addresses: ["u:pw@h:1"]}}`, "outputs.redis.sentinel.addresses[0]:"},
		{`{cluster: {addresses: [nohostport]}, password: pw}`, `outputs.redis.cluster.addresses[0]: "nohostport" is not host:port`},
		{`{cluster: {addresses: [h:1]}, db: 2}`, "outputs.redis.db: Redis Cluster has only database 0"},
		{`{cluster: {addresses: [h:1]}, legacyKeys: true}`, "outputs.redis.legacyKeys: the old key names (flagsync:x:snapshot) span several cluster slots"},
		{`{url: "redis://:pw@h:6379/0", password: pw}`, "outputs.redis.username/password/db: only with sentinel or cluster"},
		{`{url: "redis://:pw@h:6379/0", tls: {enabled: true}}`, "outputs.redis.tls.enabled: only with sentinel or cluster"},
		{`{cluster: {addresses: [h:1]}, tls: {caFile: /x}}`, "outputs.redis.tls: needs a rediss:// url, or tls.enabled: true"},
		{`{url: "redis://:pw@h:6379/0", prefix: "a{b"}`, "outputs.redis.prefix:"},
		{`{url: "redis://:pw@h:6379/0", prefix: "a b"}`, "outputs.redis.prefix:"},
	} {
		_, err := ParseConfig([]byte(base+c.yaml+"\n"), lookupFrom(nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n  err = %v\n  want containing %q", c.yaml, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("error leaks a password: %v", err)
		}
	}
	// Valid: sentinel with passwords and TLS; the status target names no password.
	cfg, err := ParseConfig([]byte(base+`{sentinel: {masterName: m, addresses: ["h1:26379", "h2:26379"], password: s3nt}, password: d4ta, tls: {enabled: true}}`+"\n"), lookupFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Outputs.Redis
	if got := redisTarget(r); got != "sentinel master m via h1:26379,h2:26379 prefix flagsync:x" {
		t.Fatalf("target %q", got)
	}
	if !r.WritesLegacyKeys() {
		t.Fatal("legacyKeys not on by default with sentinel")
	}
	c, err := newRedisClient(r)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if fc, ok := c.(*redis.Client); !ok || fc.Options().TLSConfig == nil {
		t.Fatalf("sentinel client %T without TLS", c)
	}
	if !r.Same(cfg.Outputs.Redis) {
		t.Fatal("Same is false for the same config")
	}
	if errors.Is(err, transport.ErrNoSnapshot) {
		t.Fatal("unreachable")
	}
}

// TLS as with a rediss:// URL: tls.enabled with the CA works on a TLS-only cluster, and
// a wrong CA fails loudly in the output's status.
func TestRedisClusterOutputOverTLS(t *testing.T) {
	cl := testsvc.StartRedisCluster(t, 3, testsvc.WithTLS())
	ca := cl.Nodes[0].TLS.CAFile
	h := redisTopologyHarness(t, fmt.Sprintf("    cluster: {addresses: [%q]}\n    tls: {enabled: true, caFile: %q}\n", cl.Addrs()[0], ca))
	if rep := h.mustSync(); rep.Result != "published" {
		t.Fatalf("sync on a TLS cluster: %+v (status %+v)", rep, redisStatus(t, h.d))
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), TLSConfig: cl.Nodes[0].ClientTLSConfig()})
	t.Cleanup(func() { cc.Close() })
	if _, err := transport.Read(context.Background(), cc, "flagsync:prod"); err != nil {
		t.Fatalf("read from the TLS cluster: %v", err)
	}

	wrong := testsvc.WriteTLSFiles(t, t.TempDir())
	h2 := redisTopologyHarness(t, fmt.Sprintf("    cluster: {addresses: [%q]}\n    tls: {enabled: true, caFile: %q}\n", cl.Addrs()[0], wrong.CAFile))
	_, _ = h2.sync(false)
	if st := redisStatus(t, h2.d); st.UpToDate || !strings.Contains(st.LastError, "certificate") {
		t.Fatalf("wrong CA: status %+v, want an error about the certificate", st)
	}
}
