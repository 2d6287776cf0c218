package testsvc

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RedisCluster is a Redis Cluster of masters without replicas on loopback, owned by
// a test.
type RedisCluster struct {
	Nodes []*Redis
}

// Addrs are the nodes' host:port addresses (seed addresses for a cluster client).
func (c *RedisCluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// StartRedisCluster starts masters (at least 3) redis-server nodes in cluster mode,
// joins them with `redis-cli --cluster create` (slots split evenly, no replicas), and
// waits until every node reports cluster_state:ok. The nodes stop when the test ends.
// WithTLS serves clients and the cluster bus over TLS only, every node with one
// certificate (Nodes[i].TLS).
func StartRedisCluster(t testing.TB, masters int, opts ...RedisOption) *RedisCluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("a redis cluster needs at least 3 masters, got %d", masters)
	}
	var cfg redisConfig
	for _, o := range opts {
		o(&cfg)
	}
	cli := LookPath(t, "redis-cli", "make test installs the Debian package redis-server (it ships redis-cli)")
	dir := t.TempDir()
	var files *TLSFiles
	var cliTLS []string
	if cfg.tls {
		f := WriteTLSFiles(t, dir)
		files = &f
		cliTLS = []string{"--tls", "--cacert", f.CAFile}
	}
	c := &RedisCluster{}
	for i := range masters {
		port := clusterPort(t)
		r := &Redis{t: t, Port: port, Addr: fmt.Sprintf("127.0.0.1:%d", port), TLS: files,
			args: []string{"--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", i)),
				"--cluster-node-timeout", "2000"}}
		if cfg.tls {
			r.args = append(r.args, "--tls-cluster", "yes")
		}
		r.Start()
		t.Cleanup(r.Stop)
		c.Nodes = append(c.Nodes, r)
	}
	args := append(append([]string{}, cliTLS...), "--cluster", "create")
	args = append(append(args, c.Addrs()...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := runCLI(cli, 30*time.Second, args...); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range c.Nodes {
		waitFor(t, 20*time.Second, "cluster_state:ok on "+n.Addr, func() (bool, string) {
			a := append(append([]string{}, cliTLS...), "-p", strconv.Itoa(n.Port), "cluster", "info")
			out, err := runCLI(cli, 2*time.Second, a...)
			return err == nil && strings.Contains(out, "cluster_state:ok"), out
		})
	}
	return c
}

// clusterPort is a free port whose cluster bus port (port + 10000) is a valid, free
// port too; redis-server refuses cluster mode otherwise.
func clusterPort(t testing.TB) int {
	t.Helper()
	for {
		port := FreePort(t)
		if port+10000 > 65535 {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+10000))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
}

// RedisSentinel is a master, one replica and three sentinels watching them, on
// loopback, owned by a test. Sentinels declare the master down after 1 s without an
// answer and fail over to the replica.
type RedisSentinel struct {
	MasterName string
	Data       []*Redis // the master as started, then the replica
	Sentinels  []*Redis
	cli        string
}

// SentinelAddrs are the sentinels' host:port addresses.
func (s *RedisSentinel) SentinelAddrs() []string {
	addrs := make([]string, len(s.Sentinels))
	for i, n := range s.Sentinels {
		addrs[i] = n.Addr
	}
	return addrs
}

// StartRedisSentinel starts the master, a replica of it and three sentinels (quorum
// 2; redis-server --sentinel, so no extra package is needed) and waits until every
// sentinel sees the replica and the two other sentinels.
func StartRedisSentinel(t testing.TB) *RedisSentinel {
	t.Helper()
	s := &RedisSentinel{MasterName: "flagsync-test",
		cli: LookPath(t, "redis-cli", "make test installs the Debian package redis-server (it ships redis-cli)")}
	// No 5 s wait before the first full sync (the default diskless-sync delay), so the
	// replica holds the data before the test goes on.
	master := &Redis{t: t, Port: FreePort(t), args: []string{"--repl-diskless-sync-delay", "0"}}
	master.Addr = fmt.Sprintf("127.0.0.1:%d", master.Port)
	master.Start()
	t.Cleanup(master.Stop)
	replica := &Redis{t: t, Port: FreePort(t), args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port),
		"--repl-diskless-sync-delay", "0"}}
	replica.Addr = fmt.Sprintf("127.0.0.1:%d", replica.Port)
	replica.Start()
	t.Cleanup(replica.Stop)
	s.Data = []*Redis{master, replica}
	waitFor(t, 30*time.Second, "the replica to sync", func() (bool, string) {
		out, err := runCLI(s.cli, 2*time.Second, "-p", strconv.Itoa(replica.Port), "info", "replication")
		return err == nil && strings.Contains(out, "master_link_status:up"), out
	})
	dir := t.TempDir()
	for i := range 3 {
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", i))
		body := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 2\n"+
			"sentinel down-after-milliseconds %[1]s 1000\n"+
			"sentinel failover-timeout %[1]s 5000\n"+
			"sentinel parallel-syncs %[1]s 1\n", s.MasterName, master.Port)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatalf("sentinel config: %v", err)
		}
		port := FreePort(t)
		sn := &Redis{t: t, Port: port, Addr: fmt.Sprintf("127.0.0.1:%d", port), conf: conf, args: []string{"--sentinel"}}
		sn.Start()
		t.Cleanup(sn.Stop)
		s.Sentinels = append(s.Sentinels, sn)
	}
	for _, sn := range s.Sentinels {
		waitFor(t, 30*time.Second, "sentinel "+sn.Addr+" to see the replica and 2 other sentinels", func() (bool, string) {
			out, err := runCLI(s.cli, 2*time.Second, "-p", strconv.Itoa(sn.Port), "sentinel", "master", s.MasterName)
			f := cliFields(out)
			return err == nil && f["num-slaves"] == "1" && f["num-other-sentinels"] == "2", out
		})
	}
	return s
}

// MasterAddr is the master's address according to the first sentinel that answers.
func (s *RedisSentinel) MasterAddr(t testing.TB) string {
	t.Helper()
	for _, sn := range s.Sentinels {
		if !sn.Running() {
			continue
		}
		out, err := runCLI(s.cli, 2*time.Second, "-p", strconv.Itoa(sn.Port), "sentinel", "get-master-addr-by-name", s.MasterName)
		lines := strings.Fields(out)
		if err == nil && len(lines) == 2 {
			return net.JoinHostPort(lines[0], lines[1])
		}
	}
	t.Fatalf("no sentinel names a master for %s", s.MasterName)
	return ""
}

// Master is the data server the sentinels currently name as master.
func (s *RedisSentinel) Master(t testing.TB) *Redis {
	t.Helper()
	addr := s.MasterAddr(t)
	for _, r := range s.Data {
		if r.Addr == addr {
			return r
		}
	}
	t.Fatalf("sentinels name %s, not one of the test's servers", addr)
	return nil
}

// KillMaster SIGKILLs the current master (a crash: no shutdown, no save) and returns
// it; the sentinels then promote the replica after about 1-3 s (WaitFailover).
func (s *RedisSentinel) KillMaster(t testing.TB) *Redis {
	t.Helper()
	m := s.Master(t)
	m.Stop()
	return m
}

// WaitFailover waits until the sentinels name a master other than old and that
// server answers as a master; it returns when failover is complete from a client's
// point of view.
func (s *RedisSentinel) WaitFailover(t testing.TB, old *Redis, timeout time.Duration) *Redis {
	t.Helper()
	var now *Redis
	waitFor(t, timeout, "sentinels to promote a new master", func() (bool, string) {
		for _, sn := range s.Sentinels {
			out, err := runCLI(s.cli, time.Second, "-p", strconv.Itoa(sn.Port), "sentinel", "get-master-addr-by-name", s.MasterName)
			f := strings.Fields(out)
			if err != nil || len(f) != 2 || net.JoinHostPort(f[0], f[1]) == old.Addr {
				return false, out
			}
			for _, r := range s.Data {
				if r.Addr == net.JoinHostPort(f[0], f[1]) {
					now = r
				}
			}
		}
		if now == nil {
			return false, "unknown master"
		}
		out, err := runCLI(s.cli, time.Second, "-p", strconv.Itoa(now.Port), "role")
		return err == nil && strings.HasPrefix(strings.TrimSpace(out), "master"), out
	})
	return now
}

// runCLI runs redis-cli with a deadline and returns its combined output.
func runCLI(cli string, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	return string(out), err
}

// cliFields reads redis-cli's output of a flat reply (name, value, name, value...
// one per line) into a map.
func cliFields(out string) map[string]string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	m := map[string]string{}
	for i := 0; i+1 < len(lines); i += 2 {
		m[strings.TrimSpace(lines[i])] = strings.TrimSpace(lines[i+1])
	}
	return m
}

// waitFor polls ok every 50 ms until it holds, failing the test with what the last
// poll saw after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, ok func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, last := ok()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not after %s; last saw:\n%s", what, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RestartAsReplica starts r (a killed former master) again as a replica of the
// current master, and waits until the sentinels count it, so another failover can
// follow.
func (s *RedisSentinel) RestartAsReplica(t testing.TB, r *Redis) {
	t.Helper()
	m := s.Master(t)
	r.args = []string{"--replicaof", "127.0.0.1", strconv.Itoa(m.Port), "--repl-diskless-sync-delay", "0"}
	r.Start()
	waitFor(t, 30*time.Second, "the restarted server to sync as a replica", func() (bool, string) {
		out, err := runCLI(s.cli, 2*time.Second, "-p", strconv.Itoa(r.Port), "info", "replication")
		return err == nil && strings.Contains(out, "master_link_status:up"), out
	})
	for _, sn := range s.Sentinels {
		waitFor(t, 30*time.Second, "sentinel "+sn.Addr+" to count the replica", func() (bool, string) {
			out, err := runCLI(s.cli, 2*time.Second, "-p", strconv.Itoa(sn.Port), "sentinel", "replicas", s.MasterName)
			return err == nil && strings.Contains(out, strconv.Itoa(r.Port)) && !strings.Contains(out, "s_down"), out
		})
	}
}
