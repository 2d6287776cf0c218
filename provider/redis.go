package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/transport"
)

// Backoff bounds for re-subscribing after a Pub/Sub failure.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
	// receiveTimeout bounds a silent Pub/Sub read; on expiry a PING checks the
	// connection, so a half-open connection is noticed and replaced.
	receiveTimeout = 30 * time.Second
)

// NewRedis returns a provider serving the snapshot stored in Redis under prefix
// (see transport.KeysFor). The daemon's prefix is transport.DefaultPrefix(flagSetId),
// "flagsync:<flagSetId>", unless its outputs.redis.prefix says otherwise; an empty
// prefix here is transport.DefaultPrefix("") = "flagsync:default". The caller owns
// client and closes it after Shutdown.
//
// client may be any go-redis UniversalClient: a *redis.Client for one server, the
// *redis.Client of redis.NewFailoverClient for a Sentinel-managed master, or a
// *redis.ClusterClient for Redis Cluster (key names carry a hash tag, so the
// snapshot and its revision are read with one MGET on one node).
//
// When the prefix holds no snapshot, the error (logged at WARN, returned by Init)
// lists the prefixes that do (a bounded SCAN for *:snapshot), so a reader pointed at
// the wrong flag set says how to fix it.
//
// It reads the snapshot at start, subscribes to the change channel (each message is
// a new revision), and polls the revision key every poll interval because Pub/Sub is
// at-most-once. After every (re)subscription, e.g. following a Redis restart, it
// re-reads the snapshot, since changes may have been published while disconnected.
func NewRedis(client redis.UniversalClient, prefix string, opts ...Option) *Provider {
	if prefix == "" {
		prefix = transport.DefaultPrefix("")
	}
	return newProvider(&redisSource{c: client, prefix: prefix, keys: transport.KeysFor(prefix)}, opts)
}

type redisSource struct {
	c      redis.UniversalClient
	prefix string
	keys   transport.Keys

	mu  sync.Mutex // serialises refreshes from the subscriber and the poller
	rev string     // revision of the snapshot last loaded (or rejected)
	// missing explains the missing snapshot of the current failure streak: the
	// listing of present prefixes is made once per streak, not at every poll.
	missing *transport.NoSnapshotError
}

func (s *redisSource) describe() string { return "redis " + s.keys.Snapshot }

func (s *redisSource) run(ctx context.Context, p *Provider) {
	var wg sync.WaitGroup
	wg.Go(func() { s.poll(ctx, p) })
	s.subscribe(ctx, p)
	wg.Wait()
}

// poll reads the revision key every poll interval and fetches the snapshot only
// when the revision differs from the loaded one.
func (s *redisSource) poll(ctx context.Context, p *Provider) {
	s.refresh(ctx, p, "") // initial read, before the subscription is confirmed
	t := time.NewTicker(p.o.pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rev, err := transport.ReadRevision(ctx, s.c, s.prefix)
		if err != nil {
			if ctx.Err() == nil {
				s.mu.Lock()
				p.readFailed(s.explain(ctx, err))
				s.mu.Unlock()
			}
			continue
		}
		s.refresh(ctx, p, rev)
	}
}

// subscribe follows the change channel, reconnecting with backoff.
func (s *redisSource) subscribe(ctx context.Context, p *Provider) {
	ps := s.c.Subscribe(ctx, s.keys.Channel)
	// Receive does not watch ctx; closing the PubSub unblocks it on shutdown.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer ps.Close()

	backoff := minBackoff
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, receiveTimeout)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				_ = ps.Ping(ctx) // a failure makes the next Receive reconnect
				continue
			}
			p.readFailed(fmt.Errorf("redis subscribe %s: %w", s.keys.Channel, err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		backoff = minBackoff
		switch m := msg.(type) {
		case *redis.Subscription:
			// go-redis re-subscribes after a reconnect and delivers this again:
			// anything published while we were away is only visible in the key.
			if m.Kind == "subscribe" {
				s.refresh(ctx, p, "")
			}
		case *redis.Message:
			s.refresh(ctx, p, m.Payload)
		}
	}
}

// refresh loads the snapshot unless announced (a revision from Pub/Sub or the poll)
// equals the one already loaded; announced "" forces a read.
func (s *redisSource) refresh(ctx context.Context, p *Provider, announced string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if announced != "" && announced == s.rev {
		p.readOK()
		return
	}
	data, rev, err := transport.ReadWithRevision(ctx, s.c, s.prefix)
	if err != nil {
		if ctx.Err() == nil {
			p.readFailed(s.explain(ctx, err))
		}
		return
	}
	s.missing = nil
	if rev != "" && rev == s.rev {
		p.readOK()
		return
	}
	// A rejected snapshot's revision is remembered too: it is not re-parsed on every
	// poll, only when a new one is published.
	_ = p.load(data, s.describe())
	s.rev = rev
}

// explain turns a missing snapshot into a *transport.NoSnapshotError listing the
// prefixes present, once per failure streak (s.mu held). Other errors pass through.
func (s *redisSource) explain(ctx context.Context, err error) error {
	if !errors.Is(err, transport.ErrNoSnapshot) {
		return err
	}
	if s.missing == nil {
		s.missing = transport.ExplainNoSnapshot(ctx, s.c, s.prefix)
	}
	return s.missing
}
