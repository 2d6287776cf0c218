// Package ha elects one leader among flagsync replicas so that only one of them
// publishes snapshots to Redis and runs cleanup deletions; the others stand by and take
// over when the leader's lease runs out.
//
// Two electors implement the same contract: a Consul session lock (when Consul is
// configured) and a Redis lock with a fencing token. Every acquisition yields a fence,
// a token that only grows across leaders. FencedPublish makes Redis refuse a publish
// whose fence is older than the newest one it has seen, so a leader that was paused
// (GC, VM freeze, partition) and wakes up after a failover can never overwrite the new
// leader's snapshot, even before it notices that it lost the lease.
package ha

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/flagsync/flagsync/transport"
)

// Elector campaigns for leadership.
type Elector interface {
	// Run campaigns until ctx is done and then returns nil (or an error if the elector
	// could not start at all). Each time this replica becomes leader, onElected is
	// started in its own goroutine with a context that is cancelled when the term ends
	// and with the fence of the term. When the term ends (lease lost, renewal failing
	// for too long, or ctx done), Run cancels that context, waits for onElected to
	// return, calls onLost, releases the lease and campaigns again (unless ctx is done).
	// Either callback may be nil; onElected must return once its context is cancelled.
	Run(ctx context.Context, onElected func(ctx context.Context, fence int64), onLost func()) error
	// IsLeader reports whether this replica holds a lease right now.
	IsLeader() bool
	// Fence is the fence of the current term, 0 when not leader.
	Fence() int64
}

// DefaultTTL is the lease length when none is configured. With the default retry
// interval (TTL/5) a crashed Redis-elected leader is replaced within 12 s; see
// ConsulConfig for Consul's longer server-side grace.
const DefaultTTL = 10 * time.Second

// ErrFenced is returned (wrapped in *FencedError) when a newer leader has taken over.
// It is transport's: the fence check lives in transport's publish script.
var ErrFenced = transport.ErrFenced

// FencedError tells which fence Redis already holds.
type FencedError = transport.FencedError

// lease is one backend's lock primitive; campaign turns it into an Elector.
type lease interface {
	// acquire tries once to take the lease; ok=false means somebody else holds it.
	acquire(ctx context.Context) (fence int64, ok bool, err error)
	// renew extends the held lease; ok=false means it is definitely lost.
	renew(ctx context.Context) (ok bool, err error)
	// release gives the lease up if this replica still holds it.
	release(ctx context.Context) error
}

// campaign is the election loop shared by the electors.
type campaign struct {
	lease  lease
	name   string // for logs: "redis" or "consul"
	ttl    time.Duration
	renew  time.Duration // renew period
	margin time.Duration // step down this long before the lease can expire server-side
	retry  time.Duration // standby: acquire attempt period
	log    *slog.Logger
	leader atomic.Bool
	fence  atomic.Int64
}

func newCampaign(l lease, name string, ttl, retry time.Duration, log *slog.Logger) *campaign {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if retry <= 0 {
		retry = ttl / 5
	}
	if log == nil {
		log = slog.Default()
	}
	// Renew three times per TTL so one slow or failed renewal does not cost the lease,
	// and step down a tenth of the TTL early to absorb clock drift between replicas.
	return &campaign{lease: l, name: name, ttl: ttl, renew: ttl / 3, margin: ttl / 10, retry: retry,
		log: log.With("elector", name)}
}

func (c *campaign) IsLeader() bool { return c.leader.Load() }

func (c *campaign) Fence() int64 {
	if !c.leader.Load() {
		return 0
	}
	return c.fence.Load()
}

func (c *campaign) Run(ctx context.Context, onElected func(context.Context, int64), onLost func()) error {
	for {
		fence, since, ok := c.waitAcquire(ctx)
		if !ok {
			return nil
		}
		c.lead(ctx, fence, since, onElected, onLost)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// waitAcquire tries to take the lease now and then every retry period until it
// succeeds (returning the fence and the time the successful attempt started, from
// which the lease is counted) or ctx is done.
func (c *campaign) waitAcquire(ctx context.Context) (int64, time.Time, bool) {
	t := time.NewTimer(0)
	defer t.Stop()
	failing := false // log an outage once, not every retry
	for {
		select {
		case <-ctx.Done():
			return 0, time.Time{}, false
		case <-t.C:
		}
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, c.renew)
		fence, ok, err := c.lease.acquire(actx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				c.log.Warn("leader election: acquire failed, retrying", "err", err, "every", c.retry)
			} else {
				c.log.Debug("leader election: acquire failed", "err", err)
			}
			failing = true
		case err == nil && failing:
			c.log.Info("leader election: backend reachable again")
			failing = false
		}
		if ok {
			return fence, start, true
		}
		t.Reset(c.retry)
	}
}

// lead holds one term: runs onElected, renews the lease and ends the term when the
// lease is lost, cannot be renewed before it would expire, or ctx is done.
func (c *campaign) lead(ctx context.Context, fence int64, since time.Time, onElected func(context.Context, int64), onLost func()) {
	c.fence.Store(fence)
	c.leader.Store(true)
	c.log.Info("leader election: elected", "fence", fence)
	termCtx, endTerm := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if onElected != nil {
			onElected(termCtx, fence)
		}
	}()

	validUntil := since.Add(c.ttl - c.margin)
	expire := time.NewTimer(time.Until(validUntil))
	defer expire.Stop()
	tick := time.NewTicker(c.renew)
	defer tick.Stop()
term:
	for {
		select {
		case <-ctx.Done():
			break term
		case <-expire.C:
			c.log.Warn("leader election: stepping down, lease not renewed in time", "fence", fence)
			break term
		case <-tick.C:
			start := time.Now()
			rctx, cancel := context.WithDeadline(ctx, validUntil)
			ok, err := c.lease.renew(rctx)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					c.log.Warn("leader election: renew failed", "fence", fence, "err", err)
				}
				continue
			}
			if !ok {
				c.log.Warn("leader election: stepping down, lease lost", "fence", fence)
				break term
			}
			validUntil = start.Add(c.ttl - c.margin)
			expire.Reset(time.Until(validUntil))
		}
	}
	c.leader.Store(false)
	endTerm()
	<-done
	if onLost != nil {
		onLost()
	}
	// Give the lease up so a standby takes over at once instead of after the TTL; the
	// release only deletes our own lease, so it is harmless when it is already gone.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := c.lease.release(rctx); err != nil {
		c.log.Warn("leader election: release failed", "err", err)
	}
}
