package ha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// ConsulConfig configures a Consul elector.
//
// Consul enforces a minimum session TTL (session_ttl_min, 10 s by default) and its
// servers wait up to twice the TTL before invalidating the session of a crashed
// holder, then hold the lock for LockDelay: a crashed leader is replaced within about
// 2×TTL + LockDelay + RetryInterval (≈ 24 s with the defaults). A graceful stop
// releases the lock at once.
type ConsulConfig struct {
	Client        *api.Client
	Key           string        // KV key of the lock, e.g. "flagsync/<flagSetId>/leader"
	Holder        string        // stored in the key for humans (e.g. the pod name)
	TTL           time.Duration // session TTL; DefaultTTL when 0
	LockDelay     time.Duration // Consul lock-delay after invalidation; 1 s when 0
	RetryInterval time.Duration // standby acquire period; TTL/5 when 0
	Logger        *slog.Logger
}

// ConsulElector is an Elector backed by a Consul session lock. Its fence is the Raft
// ModifyIndex of the lock key at acquisition, which only grows in a Consul cluster.
type ConsulElector struct {
	*campaign
}

var _ Elector = (*ConsulElector)(nil)

// NewConsul returns a Consul elector.
func NewConsul(cfg ConsulConfig) (*ConsulElector, error) {
	if cfg.Client == nil {
		return nil, errors.New("ha consul: no client")
	}
	if cfg.Key == "" {
		return nil, errors.New("ha consul: no lock key")
	}
	if cfg.LockDelay <= 0 {
		// Fencing already stops a paused old leader, so Consul's 15 s default delay
		// would only slow failover down.
		cfg.LockDelay = time.Second
	}
	l := &consulLease{c: cfg.Client, key: cfg.Key, holder: cfg.Holder, lockDelay: cfg.LockDelay}
	c := newCampaign(l, "consul", cfg.TTL, cfg.RetryInterval, cfg.Logger)
	l.ttl = c.ttl
	return &ConsulElector{campaign: c}, nil
}

type consulLease struct {
	c         *api.Client
	key       string
	holder    string
	ttl       time.Duration
	lockDelay time.Duration

	mu      sync.Mutex
	session string // the current term's session ("" when none)
}

func (l *consulLease) current() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.session
}

func (l *consulLease) acquire(ctx context.Context) (int64, bool, error) {
	wo := (&api.WriteOptions{}).WithContext(ctx)
	id, _, err := l.c.Session().Create(&api.SessionEntry{
		Name:      "flagsync leader " + l.key,
		TTL:       l.ttl.String(),
		LockDelay: l.lockDelay,
		Behavior:  api.SessionBehaviorRelease,
	}, wo)
	if err != nil {
		return 0, false, fmt.Errorf("consul session create for %s: %w", l.key, err)
	}
	ok, _, err := l.c.KV().Acquire(&api.KVPair{Key: l.key, Value: []byte(l.holder), Session: id}, wo)
	if err == nil && ok {
		var pair *api.KVPair
		pair, _, err = l.c.KV().Get(l.key, (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
		if err == nil && pair != nil && pair.Session == id {
			l.mu.Lock()
			l.session = id
			l.mu.Unlock()
			return int64(pair.ModifyIndex), true, nil
		}
		if err == nil {
			err = fmt.Errorf("lock %s not held by our session after acquire", l.key)
		}
	}
	// Not elected: drop the session so standbys do not pile sessions up in Consul.
	_, _ = l.c.Session().Destroy(id, (&api.WriteOptions{}).WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return 0, false, fmt.Errorf("consul acquire %s: %w", l.key, err)
	}
	return 0, false, nil
}

func (l *consulLease) renew(ctx context.Context) (bool, error) {
	id := l.current()
	entry, _, err := l.c.Session().Renew(id, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("consul session renew for %s: %w", l.key, err)
	}
	if entry == nil {
		return false, nil // session invalidated
	}
	// The session can be alive while the lock was taken away (an operator deleted the
	// key, or `consul lock` forced it): check we still hold it.
	pair, _, err := l.c.KV().Get(l.key, (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("consul get %s: %w", l.key, err)
	}
	return pair != nil && pair.Session == id, nil
}

func (l *consulLease) release(ctx context.Context) error {
	id := l.current()
	if id == "" {
		return nil
	}
	wo := (&api.WriteOptions{}).WithContext(ctx)
	// Release the key first: a plain release has no lock-delay, while invalidating the
	// session (destroy) would block the standbys for LockDelay.
	if _, _, err := l.c.KV().Release(&api.KVPair{Key: l.key, Session: id}, wo); err != nil {
		return fmt.Errorf("consul release %s: %w", l.key, err)
	}
	if _, err := l.c.Session().Destroy(id, wo); err != nil {
		return fmt.Errorf("consul session destroy for %s: %w", l.key, err)
	}
	l.mu.Lock()
	if l.session == id {
		l.session = ""
	}
	l.mu.Unlock()
	return nil
}
