// Package transport is the wire contract between the flagsync daemon (writer) and
// its readers (the Go provider, the Python package): where a snapshot lives in Redis,
// how it is published without ever going backwards, and how a file is replaced
// atomically. It depends only on go-redis so the provider stays lean.
package transport

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// publishScript sets the three keys and publishes, only when the new generation is
// newer than the stored one. Running as one script makes the step atomic: a reader
// never sees a snapshot whose revision key disagrees with it.
//
// With a fence (ARGV[5] > 0, KEYS[4] the fence key) the write is also refused when the
// fence is older than the newest one Redis has seen, and a newer fence is recorded
// first, so a newly elected leader shuts the old one out with its first publish
// attempt even when that attempt is itself stale.
//
// With ARGV[6] = "1" the last three KEYS are the legacy snapshot, revision and
// generation keys (LegacyKeysFor) and ARGV[7] the legacy channel: they are written
// too, in the same step, and the stored generation is the larger of the two, so an
// old daemon still writing only the legacy names can never be overtaken backwards.
//
// It returns {code, value}: {0, ”} published, {1, fence} fenced out, {2, generation}
// stale (Redis holds a newer or equal generation).
var publishScript = redis.NewScript(`
local fence = tonumber(ARGV[5])
if fence > 0 then
  local held = tonumber(redis.call('GET', KEYS[4]) or '0')
  if fence < held then
    return {1, tostring(redis.call('GET', KEYS[4]))}
  end
  if fence > held then
    redis.call('SET', KEYS[4], ARGV[5])
  end
end
local legacy = ARGV[6] == '1'
local lg = #KEYS - 2
local cur = redis.call('GET', KEYS[3]) or '0'
if legacy then
  local old = redis.call('GET', KEYS[lg + 2]) or '0'
  if tonumber(old) > tonumber(cur) then
    cur = old
  end
end
if tonumber(ARGV[3]) <= tonumber(cur) then
  return {2, cur}
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
if legacy then
  redis.call('SET', KEYS[lg], ARGV[1])
  redis.call('SET', KEYS[lg + 1], ARGV[2])
  redis.call('SET', KEYS[lg + 2], ARGV[3])
end
redis.call('PUBLISH', ARGV[4], ARGV[2])
if legacy then
  redis.call('PUBLISH', ARGV[7], ARGV[2])
end
return {0, ''}
`)

// ErrStale is returned by Publish when Redis already holds a newer or equal generation.
var ErrStale = errors.New("redis holds a newer snapshot")

// StaleError tells which generation Redis already holds.
type StaleError struct{ Current int64 }

func (e *StaleError) Error() string {
	return fmt.Sprintf("redis holds generation %d, newer than or equal to ours", e.Current)
}

func (e *StaleError) Unwrap() error { return ErrStale }

// ErrFenced is returned (wrapped in *FencedError) by PublishFenced when a writer with
// a newer fence (a newer leader) has published.
var ErrFenced = errors.New("fenced out by a newer leader")

// FencedError tells which fence Redis already holds.
type FencedError struct{ Ours, Current int64 }

func (e *FencedError) Error() string {
	return fmt.Sprintf("fence %d is older than fence %d of a newer leader", e.Ours, e.Current)
}

func (e *FencedError) Unwrap() error { return ErrFenced }

// PublishOptions are the optional parts of a publish.
type PublishOptions struct {
	// FenceKey and Fence (> 0) make the publish a leader's: refused when a newer
	// fence is stored (see PublishFenced). With Redis Cluster, FenceKey must share
	// the prefix's slot (start with KeyBase(prefix)).
	FenceKey string
	Fence    int64
	// Legacy also writes the old key names (LegacyKeysFor) in the same step, for
	// readers not yet upgraded to hash-tagged names. Not on Redis Cluster: the old
	// names of an untagged prefix span several slots.
	Legacy bool
}

// Publish writes snapshot (with its revision and generation) under prefix and announces
// the revision on the channel, unless Redis already holds generation >= generation,
// in which case it returns a *StaleError and changes nothing.
func Publish(ctx context.Context, c redis.UniversalClient, prefix string, snapshot []byte, revision string, generation int64) error {
	return PublishWith(ctx, c, prefix, PublishOptions{}, snapshot, revision, generation)
}

// PublishFenced is Publish for an elected leader: it writes only if fence (> 0) is at
// least the newest fence stored in fenceKey, and records fence when it is newer. It
// returns a *FencedError (errors.Is ErrFenced) when a newer leader has taken over and
// a *StaleError (errors.Is ErrStale) when Redis holds generation >= generation; in both
// cases nothing is written. With Redis Cluster, fenceKey must share the prefix's slot.
func PublishFenced(ctx context.Context, c redis.UniversalClient, prefix, fenceKey string, fence int64,
	snapshot []byte, revision string, generation int64) error {
	if fence <= 0 || fenceKey == "" {
		return fmt.Errorf("redis fenced publish %s: fence must be positive and the fence key set", KeysFor(prefix).Snapshot)
	}
	return PublishWith(ctx, c, prefix, PublishOptions{FenceKey: fenceKey, Fence: fence}, snapshot, revision, generation)
}

// PublishWith is Publish with options (fence, legacy key names).
func PublishWith(ctx context.Context, c redis.UniversalClient, prefix string, o PublishOptions,
	snapshot []byte, revision string, generation int64) error {
	k := KeysFor(prefix)
	if (o.Fence != 0 || o.FenceKey != "") && (o.Fence <= 0 || o.FenceKey == "") {
		return fmt.Errorf("redis fenced publish %s: fence must be positive and the fence key set", k.Snapshot)
	}
	keys := []string{k.Snapshot, k.Revision, k.Generation}
	if o.FenceKey != "" {
		keys = append(keys, o.FenceKey)
	}
	legacy := LegacyKeysFor(prefix)
	mirror := o.Legacy && legacy.Snapshot != k.Snapshot
	if mirror {
		keys = append(keys, legacy.Snapshot, legacy.Revision, legacy.Generation)
	}
	res, err := publishScript.Run(ctx, c, keys,
		snapshot, revision, strconv.FormatInt(generation, 10), k.Channel, strconv.FormatInt(o.Fence, 10),
		boolArg(mirror), legacy.Channel).Slice()
	if err != nil {
		return fmt.Errorf("redis publish %s: %w", k.Snapshot, err)
	}
	if len(res) != 2 {
		return fmt.Errorf("redis publish %s: unexpected reply %v", k.Snapshot, res)
	}
	code, _ := res[0].(int64)
	val, _ := res[1].(string)
	switch code {
	case 0:
		return nil
	case 1:
		cur, _ := strconv.ParseInt(val, 10, 64)
		return &FencedError{Ours: o.Fence, Current: cur}
	case 2:
		cur, _ := strconv.ParseInt(val, 10, 64)
		return &StaleError{Current: cur}
	default:
		return fmt.Errorf("redis publish %s: unexpected reply code %d", k.Snapshot, code)
	}
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// ErrNoSnapshot is returned by Read when the snapshot key does not exist.
var ErrNoSnapshot = errors.New("no snapshot in redis")

// Read returns the snapshot JSON stored under prefix.
func Read(ctx context.Context, c redis.UniversalClient, prefix string) ([]byte, error) {
	k := KeysFor(prefix)
	b, err := c.Get(ctx, k.Snapshot).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redis get %s: %w", k.Snapshot, ErrNoSnapshot)
	}
	if err != nil {
		return nil, fmt.Errorf("redis get %s: %w", k.Snapshot, err)
	}
	return b, nil
}

// ReadGeneration returns the generation stored under prefix (0 when there is none).
func ReadGeneration(ctx context.Context, c redis.UniversalClient, prefix string) (int64, error) {
	k := KeysFor(prefix)
	n, err := c.Get(ctx, k.Generation).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redis get %s: %w", k.Generation, err)
	}
	return n, nil
}

// ReadLegacy returns the snapshot and generation stored under the old key names of
// prefix (LegacyKeysFor; nil and 0 when absent): what a daemon upgraded from a
// version without hash-tagged names continues from.
func ReadLegacy(ctx context.Context, c redis.UniversalClient, prefix string) (snapshot []byte, generation int64, err error) {
	k := LegacyKeysFor(prefix)
	vals, err := c.MGet(ctx, k.Snapshot, k.Generation).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("redis mget %s %s: %w", k.Snapshot, k.Generation, err)
	}
	if s, ok := vals[0].(string); ok {
		snapshot = []byte(s)
	}
	if g, ok := vals[1].(string); ok {
		if generation, err = strconv.ParseInt(g, 10, 64); err != nil {
			return nil, 0, fmt.Errorf("redis get %s: not a generation: %w", k.Generation, err)
		}
	}
	return snapshot, generation, nil
}

// WriteFileAtomic replaces path with data so that readers see either the old or the new
// content, never a mix: temp file in the same directory, write, fsync, chmod, rename,
// fsync the directory. If path is a symlink, the link itself is replaced.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	_, err := WriteFileAtomicStat(path, data, mode)
	return err
}

// WriteFileAtomicStat is WriteFileAtomic that also returns the written file's
// FileInfo, taken before the rename (which keeps its inode, size and mtime), so a
// writer can later tell its own file from one another process put in its place,
// even if that happened right after the rename.
func WriteFileAtomicStat(path string, data []byte, mode os.FileMode) (fi os.FileInfo, err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return nil, fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err = tmp.Sync(); err != nil {
		return nil, fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err = tmp.Chmod(mode); err != nil {
		return nil, fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if fi, err = tmp.Stat(); err != nil {
		return nil, fmt.Errorf("stat %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return nil, fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("rename %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return nil, fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return fi, nil
}

// ReadWithRevision returns the snapshot JSON and its revision in one atomic MGET, so
// the pair always belongs to the same publish (with Redis Cluster the prefix must
// carry a hash tag so both keys share a slot).
func ReadWithRevision(ctx context.Context, c redis.UniversalClient, prefix string) (snapshot []byte, revision string, err error) {
	k := KeysFor(prefix)
	vals, err := c.MGet(ctx, k.Snapshot, k.Revision).Result()
	if err != nil {
		return nil, "", fmt.Errorf("redis mget %s %s: %w", k.Snapshot, k.Revision, err)
	}
	snap, ok := vals[0].(string)
	if !ok {
		return nil, "", fmt.Errorf("redis get %s: %w", k.Snapshot, ErrNoSnapshot)
	}
	rev, _ := vals[1].(string)
	return []byte(snap), rev, nil
}

// ReadRevision returns the revision stored under prefix; it is the cheap check a
// poller makes before fetching the whole snapshot. A missing key is ErrNoSnapshot.
func ReadRevision(ctx context.Context, c redis.UniversalClient, prefix string) (string, error) {
	k := KeysFor(prefix)
	rev, err := c.Get(ctx, k.Revision).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("redis get %s: %w", k.Revision, ErrNoSnapshot)
	}
	if err != nil {
		return "", fmt.Errorf("redis get %s: %w", k.Revision, err)
	}
	return rev, nil
}

// ReadHeld returns the revision and generation stored under prefix in one atomic
// MGET ("" and 0 when there is no snapshot): what a writer checks to know whether
// Redis still holds its snapshot.
func ReadHeld(ctx context.Context, c redis.UniversalClient, prefix string) (revision string, generation int64, err error) {
	k := KeysFor(prefix)
	vals, err := c.MGet(ctx, k.Revision, k.Generation).Result()
	if err != nil {
		return "", 0, fmt.Errorf("redis mget %s %s: %w", k.Revision, k.Generation, err)
	}
	revision, _ = vals[0].(string)
	if g, ok := vals[1].(string); ok {
		if generation, err = strconv.ParseInt(g, 10, 64); err != nil {
			return "", 0, fmt.Errorf("redis get %s: not a generation: %w", k.Generation, err)
		}
	}
	return revision, generation, nil
}
