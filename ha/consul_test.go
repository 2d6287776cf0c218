package ha_test

import (
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/flagsync/flagsync/ha"
	"github.com/flagsync/flagsync/internal/testsvc"
)

// Consul refuses session TTLs below its session_ttl_min (10 s by default).
const consulTTL = 10 * time.Second

// cuttable is an HTTP transport the test can cut, to partition one replica from Consul
// while the agent keeps serving the others.
type cuttable struct {
	down atomic.Bool
	next http.RoundTripper
}

func (c *cuttable) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.down.Load() {
		return nil, errors.New("partitioned")
	}
	return c.next.RoundTrip(r)
}

func startConsulMember(t *testing.T, name string, agent *testsvc.Consul) (*member, *cuttable) {
	t.Helper()
	rt := &cuttable{next: http.DefaultTransport.(*http.Transport).Clone()}
	client, err := api.NewClient(&api.Config{Address: agent.Addr, HttpClient: &http.Client{Transport: rt, Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	el, err := ha.NewConsul(ha.ConsulConfig{Client: client, Key: "flagsync/test/leader", Holder: name, TTL: consulTTL, RetryInterval: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return runMember(t, name, nil, el), rt
}

func TestConsulElection(t *testing.T) {
	agent := testsvc.StartConsul(t)
	a, cutA := startConsulMember(t, "a", agent)
	leader, fence := waitLeader(t, 10*time.Second, a)
	if fence <= 0 {
		t.Fatalf("fence %d, want > 0", fence)
	}
	b, _ := startConsulMember(t, "b", agent)
	time.Sleep(time.Second) // b tries to acquire a couple of times meanwhile
	if n := countLeaders(a, b); n != 1 || !leader.el.IsLeader() {
		t.Fatalf("%d leaders (a leader: %v), want only a", n, a.el.IsLeader())
	}

	// Partition a from Consul: it must step down within the TTL, and b must take over
	// once Consul invalidates a's session (up to 2×TTL, then the lock-delay).
	cut := time.Now()
	cutA.down.Store(true)
	select {
	case <-a.lost:
		t.Logf("partitioned leader stepped down after %s (TTL %s)", time.Since(cut), consulTTL)
	case <-time.After(consulTTL + 2*time.Second):
		t.Fatal("partitioned leader did not step down within the TTL")
	}
	if a.el.IsLeader() {
		t.Fatal("a still reports leader after onLost")
	}
	_, newFence := waitLeader(t, 2*consulTTL+5*time.Second, b)
	t.Logf("b elected %s after the partition", time.Since(cut))
	if newFence <= fence {
		t.Fatalf("new fence %d not greater than old fence %d", newFence, fence)
	}
	if a.el.IsLeader() {
		t.Fatal("a and b both leaders")
	}

	// A graceful stop releases the lock without lock-delay: a (healed) takes over fast.
	cutA.down.Store(false)
	b.stop()
	_, f3 := waitLeader(t, 5*time.Second, a)
	if f3 <= newFence {
		t.Fatalf("fence %d after handover not greater than %d", f3, newFence)
	}
}
