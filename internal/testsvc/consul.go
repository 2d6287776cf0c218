package testsvc

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Consul is a real Consul agent in -dev mode (in-memory, single server) owned by a test.
type Consul struct {
	t testing.TB
	// Addr is host:port of the HTTP API (give it to api.Config.Address).
	Addr string
	// ManagementToken is the ACL initial management token ("" without WithACL).
	ManagementToken string

	bin    string
	config string
	mu     sync.Mutex
	proc   *process
}

// ConsulOption changes how StartConsul configures the agent.
type ConsulOption func(*consulOptions)

type consulOptions struct {
	acl           bool
	sessionTTLMin time.Duration
}

// WithACL enables ACLs with default_policy deny; the agent's initial management
// token is returned in Consul.ManagementToken.
func WithACL() ConsulOption { return func(o *consulOptions) { o.acl = true } }

// WithSessionTTLMin lowers the smallest session TTL the agent accepts (Consul's
// default is 10s), so tests of session-based locks can fail over in seconds.
func WithSessionTTLMin(d time.Duration) ConsulOption {
	return func(o *consulOptions) { o.sessionTTLMin = d }
}

// StartConsul starts `consul agent -dev` with every port on a free 127.0.0.1 port
// (DNS and gRPC off), waits until it has a leader and stops it when the test ends.
// The binary is $FLAGSYNC_CONSUL_BIN or `consul` on PATH (make deps builds it).
func StartConsul(t testing.TB, opts ...ConsulOption) *Consul {
	t.Helper()
	var o consulOptions
	for _, opt := range opts {
		opt(&o)
	}
	c := &Consul{t: t, bin: consulBinary(t)}
	httpPort := FreePort(t)
	c.Addr = fmt.Sprintf("127.0.0.1:%d", httpPort)
	hcl := fmt.Sprintf(`bind_addr = "127.0.0.1"
client_addr = "127.0.0.1"
advertise_addr = "127.0.0.1"
disable_update_check = true
log_level = "warn"
ports {
  http = %d
  https = -1
  dns = -1
  grpc = -1
  grpc_tls = -1
  serf_lan = %d
  serf_wan = %d
  server = %d
}
`, httpPort, FreePort(t), FreePort(t), FreePort(t))
	if o.sessionTTLMin > 0 {
		hcl += fmt.Sprintf("session_ttl_min = %q\n", o.sessionTTLMin.String())
	}
	if o.acl {
		c.ManagementToken = randomUUID(t)
		hcl += fmt.Sprintf(`acl {
  enabled = true
  default_policy = "deny"
  enable_token_persistence = false
  tokens {
    initial_management = %q
  }
}
`, c.ManagementToken)
	}
	c.config = filepath.Join(t.TempDir(), "consul.hcl")
	if err := os.WriteFile(c.config, []byte(hcl), 0o600); err != nil {
		t.Fatalf("consul config: %v", err)
	}
	c.Start()
	t.Cleanup(c.Stop)
	return c
}

// URL is the http:// base URL of the agent.
func (c *Consul) URL() string { return "http://" + c.Addr }

// Start (re)starts the agent on the same ports and waits for a leader. -dev keeps
// data in memory, so a restart begins empty (and with lower Raft indexes).
func (c *Consul) Start() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.proc = startProcess(c.t, "consul", c.bin, "agent", "-dev", "-config-file", c.config)
	if err := c.waitReady(60 * time.Second); err != nil {
		tail := c.proc.logTail()
		c.proc.kill()
		c.proc = nil
		c.t.Fatalf("consul agent: %v\n%s", err, tail)
	}
}

// Stop kills the agent (like a crash).
func (c *Consul) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.proc.kill()
	c.proc = nil
}

// waitReady waits for a leader and for the KV endpoint to answer (with ACLs: to
// accept the management token, which happens a moment after the election).
func (c *Consul) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		leader, status := c.get(client, "/v1/status/leader")
		if status == http.StatusOK && strings.Trim(strings.TrimSpace(leader), `"`) != "" {
			body, status := c.get(client, "/v1/kv/flagsync-testsvc-ready")
			if status == http.StatusOK || status == http.StatusNotFound {
				return nil
			}
			last = fmt.Sprintf("kv: HTTP %d %s", status, body)
		} else {
			last = fmt.Sprintf("leader: HTTP %d %q", status, leader)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s (last: %s)", timeout, last)
}

func (c *Consul) get(client *http.Client, path string) (string, int) {
	req, err := http.NewRequest(http.MethodGet, c.URL()+path, nil)
	if err != nil {
		return err.Error(), 0
	}
	if c.ManagementToken != "" {
		req.Header.Set("X-Consul-Token", c.ManagementToken)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err.Error(), 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return string(b), resp.StatusCode
}

func consulBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("FLAGSYNC_CONSUL_BIN"); p != "" {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	if p, err := exec.LookPath("consul"); err == nil {
		return p
	}
	t.Fatalf("consul not found ($FLAGSYNC_CONSUL_BIN=%q, not on PATH): run `make deps` (scripts/ensure-consul.sh builds Consul v1.14.11 from tools/consul)", os.Getenv("FLAGSYNC_CONSUL_BIN"))
	return ""
}

func randomUUID(t testing.TB) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random token: %v", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
