package ssm

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flagsync/flagsync/sources"
)

// limiter is a token bucket in its "virtual scheduling" form: each request is given
// the next free slot, interval apart, and may run up to burst-1 intervals early.
// golang.org/x/time/rate is not in the module graph, and this is all we need.
type limiter struct {
	interval  time.Duration
	tolerance time.Duration // (burst-1) * interval
	mu        sync.Mutex
	next      time.Time // the theoretical time of the next request
}

func newLimiter(perSecond float64, burst int) *limiter {
	interval := time.Duration(float64(time.Second) / perSecond)
	return &limiter{interval: interval, tolerance: time.Duration(burst-1) * interval}
}

// burstFor allows one second's worth of requests at once (at least 1).
func burstFor(perSecond float64) int { return max(1, int(perSecond)) }

// Wait blocks until the caller may send one request, or ctx is done.
func (l *limiter) Wait(ctx context.Context) error {
	l.mu.Lock()
	now := time.Now()
	slot := l.next
	if slot.Before(now) {
		slot = now
	}
	l.next = slot.Add(l.interval)
	wait := slot.Sub(now) - l.tolerance
	l.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	if !sources.Sleep(ctx, wait) {
		return ctx.Err()
	}
	return nil
}

// rateLimitedClient makes every HTTP attempt, retries included, wait for the limiter,
// so one big account never uses more than its share of the API quota.
type rateLimitedClient struct {
	next  aws.HTTPClient
	limit *limiter
}

func (c *rateLimitedClient) Do(req *http.Request) (*http.Response, error) {
	if err := c.limit.Wait(req.Context()); err != nil {
		return nil, fmt.Errorf("rate limit: %w", err)
	}
	return c.next.Do(req)
}
