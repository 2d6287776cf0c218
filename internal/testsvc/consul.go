package testsvc

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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
	node   string // node_name, unique: tells our agent from another on a reused port
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
	c := &Consul{t: t, bin: consulBinary(t), node: "flagsync-test-" + randomUUID(t)[:8]}
	if o.acl {
		c.ManagementToken = randomUUID(t)
	}
	c.config = filepath.Join(t.TempDir(), "consul.hcl")
	// A free port may be taken by another test process (packages test in parallel)
	// before the agent binds it: then start over on other ports.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		httpPort := FreePort(t)
		c.Addr = fmt.Sprintf("127.0.0.1:%d", httpPort)
		hcl := consulHCL(c.node, httpPort, FreePort(t), FreePort(t), FreePort(t), o, c.ManagementToken)
		if err = os.WriteFile(c.config, []byte(hcl), 0o600); err != nil {
			t.Fatalf("consul config: %v", err)
		}
		if err = c.start(); err == nil || !errors.Is(err, errPortTaken) {
			break
		}
	}
	if err != nil {
		t.Fatalf("consul agent: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

func consulHCL(node string, httpPort, serfLAN, serfWAN, server int, o consulOptions, token string) string {
	hcl := fmt.Sprintf(`node_name = %q
bind_addr = "127.0.0.1"
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
`, node, httpPort, serfLAN, serfWAN, server)
	if o.sessionTTLMin > 0 {
		hcl += fmt.Sprintf("session_ttl_min = %q\n", o.sessionTTLMin.String())
	}
	if o.acl {
		hcl += fmt.Sprintf(`acl {
  enabled = true
  default_policy = "deny"
  enable_token_persistence = false
  tokens {
    initial_management = %q
  }
}
`, token)
	}
	return hcl
}

// URL is the http:// base URL of the agent.
func (c *Consul) URL() string { return "http://" + c.Addr }

// Start (re)starts the agent on the same ports and waits for a leader. -dev keeps
// data in memory, so a restart begins empty (and with lower Raft indexes).
func (c *Consul) Start() {
	c.t.Helper()
	if err := c.start(); err != nil {
		c.t.Fatalf("consul agent: %v", err)
	}
}

// errPortTaken: the agent exited while starting, or another agent answers on its
// HTTP port.
var errPortTaken = errors.New("a port of the agent is taken")

func (c *Consul) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.proc = startProcess(c.t, "consul", c.bin, "agent", "-dev", "-config-file", c.config)
	if err := c.waitReady(60 * time.Second); err != nil {
		tail := c.proc.logTail()
		c.proc.kill()
		c.proc = nil
		return fmt.Errorf("%w\n%s", err, tail)
	}
	return nil
}

// Signal sends sig to the agent process (SIGSTOP/SIGCONT freeze and thaw it).
func (c *Consul) Signal(sig os.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil || c.proc.cmd.Process == nil {
		return errors.New("consul agent not running")
	}
	return c.proc.cmd.Process.Signal(sig)
}

// Stop kills the agent (like a crash).
func (c *Consul) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.proc.kill()
	c.proc = nil
}

// Pause freezes the agent with SIGSTOP: connections stay open and nothing answers,
// like a hung server. Resume continues it; Stop and the test's cleanup kill a paused
// agent too.
func (c *Consul) Pause() { c.signal(syscall.SIGSTOP) }

// Resume continues an agent frozen by Pause (SIGCONT).
func (c *Consul) Resume() { c.signal(syscall.SIGCONT) }

func (c *Consul) signal(sig syscall.Signal) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil || c.proc.cmd.Process == nil {
		c.t.Fatalf("consul agent: not running")
	}
	if err := c.proc.cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("consul agent: %s: %v", sig, err)
	}
}

// waitReady waits for a leader, for the KV endpoint to answer (with ACLs: to accept
// the management token, which happens a moment after the election) and for the
// agent's own node to be registered with a passing serfHealth check: until then
// Consul refuses to create sessions (HTTP 500), which locks and HA tests need.
func (c *Consul) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if c.proc.exited() {
			return fmt.Errorf("%w: consul exited while starting", errPortTaken)
		}
		last = c.notReady(client)
		if last == "" {
			return nil
		}
		if strings.HasPrefix(last, "foreign") {
			return fmt.Errorf("%w: %s", errPortTaken, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s (last: %s)", timeout, last)
}

// notReady says what the agent still lacks, "" when nothing.
func (c *Consul) notReady(client *http.Client) string {
	leader, status := c.get(client, "/v1/status/leader")
	if status != http.StatusOK || strings.Trim(strings.TrimSpace(leader), `"`) == "" {
		return fmt.Sprintf("leader: HTTP %d %q", status, leader)
	}
	body, status := c.get(client, "/v1/kv/flagsync-testsvc-ready")
	if status != http.StatusOK && status != http.StatusNotFound {
		return fmt.Sprintf("kv: HTTP %d %s", status, body)
	}
	body, status = c.get(client, "/v1/agent/self")
	var self struct{ Config struct{ NodeName string } }
	if status != http.StatusOK || json.Unmarshal([]byte(body), &self) != nil || self.Config.NodeName == "" {
		return fmt.Sprintf("agent/self: HTTP %d", status)
	}
	if self.Config.NodeName != c.node {
		return fmt.Sprintf("foreign agent %q answers on %s", self.Config.NodeName, c.Addr)
	}
	body, status = c.get(client, "/v1/health/node/"+self.Config.NodeName)
	var checks []struct{ CheckID, Status string }
	if status != http.StatusOK || json.Unmarshal([]byte(body), &checks) != nil {
		return fmt.Sprintf("health/node: HTTP %d %s", status, body)
	}
	for _, ch := range checks {
		if ch.CheckID == "serfHealth" && ch.Status == "passing" {
			return ""
		}
	}
	return fmt.Sprintf("node %s: serfHealth not passing yet (%s)", self.Config.NodeName, body)
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
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20)) // agent/self runs to tens of KB
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
