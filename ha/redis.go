package ha

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/transport"
)

// Keys are the Redis names ha uses under the transport prefix of a flag set
// (transport.DefaultPrefix), next to the snapshot keys.
type Keys struct {
	Leader string // the lease: the holder's random token, with a TTL (Redis elector)
	Fence  string // the newest fence (decimal); only ever grows
}

// KeysFor returns the ha keys under prefix, named like the snapshot keys
// (transport.KeyBase) so that the fence shares their Redis Cluster slot and the
// fenced publish script can check it.
func KeysFor(prefix string) Keys {
	base := transport.KeyBase(prefix)
	return Keys{Leader: base + ":leader", Fence: base + ":fence"}
}

// RedisConfig configures a Redis elector. Use the Redis that snapshots are published
// to, so that the fence the elector issues is the one FencedPublish checks.
type RedisConfig struct {
	Client        redis.UniversalClient
	Prefix        string        // the flag set's transport prefix
	TTL           time.Duration // lease length; DefaultTTL when 0
	RetryInterval time.Duration // standby acquire period; TTL/5 when 0
	Logger        *slog.Logger
}

// RedisElector is an Elector backed by a Redis lock with a fencing token.
type RedisElector struct {
	*campaign
}

var _ Elector = (*RedisElector)(nil)

// NewRedis returns a Redis elector.
func NewRedis(cfg RedisConfig) (*RedisElector, error) {
	if cfg.Client == nil {
		return nil, errors.New("ha redis: no client")
	}
	if cfg.Prefix == "" {
		return nil, errors.New("ha redis: no key prefix")
	}
	l := &redisLease{c: cfg.Client, keys: KeysFor(cfg.Prefix)}
	c := newCampaign(l, "redis", cfg.TTL, cfg.RetryInterval, cfg.Logger)
	l.ttl = c.ttl
	return &RedisElector{campaign: c}, nil
}

// acquireScript takes the lease if it is free and issues the next fence. The fence is
// INCR of the fence key but never below the server's clock in milliseconds, so it
// keeps growing even if Redis loses its data (restart without persistence) while an
// old leader still holds a fence from before.
var acquireScript = redis.NewScript(`
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
local f = redis.call('INCR', KEYS[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now > f then
  f = now
  redis.call('SET', KEYS[2], string.format('%d', f))
end
return f
`)

// renewScript extends the lease only if we still hold it (compare-and-pexpire).
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript deletes the lease only if we still hold it (compare-and-del).
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

type redisLease struct {
	c    redis.UniversalClient
	keys Keys
	ttl  time.Duration

	mu    sync.Mutex
	token string // the current term's random lease value
}

func (l *redisLease) acquire(ctx context.Context) (int64, bool, error) {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand contract)
	token := hex.EncodeToString(b[:])
	fence, err := acquireScript.Run(ctx, l.c, []string{l.keys.Leader, l.keys.Fence},
		token, l.ttl.Milliseconds()).Int64()
	if err != nil {
		return 0, false, fmt.Errorf("redis acquire %s: %w", l.keys.Leader, err)
	}
	if fence == 0 {
		return 0, false, nil
	}
	l.mu.Lock()
	l.token = token
	l.mu.Unlock()
	return fence, true, nil
}

func (l *redisLease) current() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.token
}

func (l *redisLease) renew(ctx context.Context) (bool, error) {
	n, err := renewScript.Run(ctx, l.c, []string{l.keys.Leader}, l.current(), l.ttl.Milliseconds()).Int64()
	if err != nil {
		return false, fmt.Errorf("redis renew %s: %w", l.keys.Leader, err)
	}
	return n == 1, nil
}

func (l *redisLease) release(ctx context.Context) error {
	if err := releaseScript.Run(ctx, l.c, []string{l.keys.Leader}, l.current()).Err(); err != nil {
		return fmt.Errorf("redis release %s: %w", l.keys.Leader, err)
	}
	return nil
}
