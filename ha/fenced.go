package ha

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/transport"
)

// fencedPublishScript is transport's publish (the same keys, the same generation
// rule, the same announcement) behind a fence check, in one script so that the check
// and the write are atomic. A fence newer than the stored one is recorded first, so a
// newly elected leader shuts the old one out with its first publish attempt even when
// that attempt is itself stale (Consul fences are only known to Redis this way).
var fencedPublishScript = redis.NewScript(`
local held = tonumber(redis.call('GET', KEYS[4]) or '0')
local ours = tonumber(ARGV[5])
if ours < held then
  return {1, tostring(redis.call('GET', KEYS[4]))}
end
if ours > held then
  redis.call('SET', KEYS[4], ARGV[5])
end
local cur = redis.call('GET', KEYS[3]) or '0'
if tonumber(ARGV[3]) <= tonumber(cur) then
  return {2, cur}
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[2])
return {0, '0'}
`)

// FencedPublish is transport.Publish for a leader: it writes snapshot (with its revision
// and generation) under prefix only if fence is at least the newest fence Redis has
// seen, and records fence when it is newer. It returns a *FencedError (errors.Is
// ErrFenced) when a newer leader has taken over, and a *transport.StaleError (errors.Is
// transport.ErrStale) when Redis already holds generation >= generation; in both cases
// nothing is written.
func FencedPublish(ctx context.Context, c redis.UniversalClient, prefix string, fence int64,
	snapshot []byte, revision string, generation int64) error {
	k := transport.KeysFor(prefix)
	hk := KeysFor(prefix)
	res, err := fencedPublishScript.Run(ctx, c, []string{k.Snapshot, k.Revision, k.Generation, hk.Fence},
		snapshot, revision, strconv.FormatInt(generation, 10), k.Channel, strconv.FormatInt(fence, 10)).Slice()
	if err != nil {
		return fmt.Errorf("redis fenced publish %s: %w", k.Snapshot, err)
	}
	if len(res) != 2 {
		return fmt.Errorf("redis fenced publish %s: unexpected reply %v", k.Snapshot, res)
	}
	code, _ := res[0].(int64)
	s, _ := res[1].(string)
	switch code {
	case 0:
		return nil
	case 1:
		cur, _ := strconv.ParseInt(s, 10, 64)
		return fmt.Errorf("redis fenced publish %s: %w", k.Snapshot, &FencedError{Ours: fence, Current: cur})
	case 2:
		cur, _ := strconv.ParseInt(s, 10, 64)
		return fmt.Errorf("redis fenced publish %s: %w", k.Snapshot, &transport.StaleError{Current: cur})
	default:
		return fmt.Errorf("redis fenced publish %s: unexpected reply code %d", k.Snapshot, code)
	}
}

// ErrNotLeader is returned by PublishAsLeader on a standby replica: nothing was
// written, and that is the expected outcome, not a failure.
var ErrNotLeader = errors.New("not the leader: publish left to the leader")

// PublishAsLeader publishes with the elector's current fence when this replica leads
// and returns ErrNotLeader otherwise. Leadership can end between the check and the
// write; the fence makes Redis refuse the write then (ErrFenced) once a newer leader
// has been elected.
func PublishAsLeader(ctx context.Context, el Elector, c redis.UniversalClient, prefix string,
	snapshot []byte, revision string, generation int64) error {
	fence := el.Fence()
	if fence == 0 {
		return ErrNotLeader
	}
	return FencedPublish(ctx, c, prefix, fence, snapshot, revision, generation)
}
