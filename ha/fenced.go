package ha

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/transport"
)

// FencedPublish is transport.Publish for a leader: it writes snapshot (with its revision
// and generation) under prefix only if fence is at least the newest fence Redis has
// seen, and records fence when it is newer. It returns a *FencedError (errors.Is
// ErrFenced) when a newer leader has taken over, and a *transport.StaleError (errors.Is
// transport.ErrStale) when Redis already holds generation >= generation; in both cases
// nothing is written.
func FencedPublish(ctx context.Context, c redis.UniversalClient, prefix string, fence int64,
	snapshot []byte, revision string, generation int64) error {
	return transport.PublishFenced(ctx, c, prefix, KeysFor(prefix).Fence, fence, snapshot, revision, generation)
}

// ErrNotLeader is returned by PublishAsLeader on a standby replica: nothing was
// written, and that is the expected outcome, not a failure.
var ErrNotLeader = errors.New("not the leader: publish left to the leader")

// PublishAsLeader publishes with the elector's current fence when this replica leads
// and returns ErrNotLeader otherwise. Leadership can end between the check and the
// write; the fence makes Redis refuse the write then (ErrFenced) once a newer leader
// has been elected.
//
// legacy also writes the old key names (transport.PublishOptions.Legacy).
func PublishAsLeader(ctx context.Context, el Elector, c redis.UniversalClient, prefix string, legacy bool,
	snapshot []byte, revision string, generation int64) error {
	fence := el.Fence()
	if fence == 0 {
		return ErrNotLeader
	}
	return transport.PublishWith(ctx, c, prefix, transport.PublishOptions{FenceKey: KeysFor(prefix).Fence, Fence: fence, Legacy: legacy},
		snapshot, revision, generation)
}
