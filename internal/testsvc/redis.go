package testsvc

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Redis is a real redis-server owned by a test.
type Redis struct {
	t    testing.TB
	Port int
	Addr string // 127.0.0.1:port
	mu   sync.Mutex
	proc *process
}

// StartRedis starts redis-server on a free loopback port without persistence and
// stops it when the test ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	r := &Redis{t: t, Port: FreePort(t)}
	r.Addr = fmt.Sprintf("127.0.0.1:%d", r.Port)
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// URL is the redis:// URL of the server.
func (r *Redis) URL() string { return "redis://" + r.Addr + "/0" }

// Start (re)starts the server on the same port; data is not kept across restarts.
func (r *Redis) Start() {
	r.t.Helper()
	bin := LookPath(r.t, "redis-server", "make test installs the Debian package redis-server")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.proc = startProcess(r.t, "redis", bin,
		"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "yes")
	if err := waitTCP(r.Addr, 10*time.Second); err != nil {
		tail := r.proc.logTail()
		r.proc.kill()
		r.t.Fatalf("redis-server: %v\n%s", err, tail)
	}
}

// Stop kills the server (like a crash: no shutdown save).
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.proc.kill()
	r.proc = nil
}
