package sources

import (
	"context"
	"time"
)

// Sleep waits d or until ctx is done, and tells whether the full d passed. Sources
// use it between retries and while waiting for a store to settle, so shutdown never
// waits out a backoff.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
