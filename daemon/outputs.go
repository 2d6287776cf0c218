package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/ha"
	"github.com/flagsync/flagsync/transport"
)

// output is one place snapshots are published to.
type output interface {
	name() string
	// target is where it writes, safe for logs and status (no passwords).
	target() string
	// load returns the snapshot the output holds (nil, nil when it holds none).
	load(ctx context.Context) (*snapshot, error)
	// check cheaply returns the revision the output holds now, when it can tell;
	// Redis can lose its data on a restart, a file we wrote ourselves cannot.
	check(ctx context.Context) (revision string, ok bool)
	publish(ctx context.Context, s *snapshot) error
	close()
}

// staleError reports that an output already holds a newer generation.
type staleError struct{ current int64 }

func (e *staleError) Error() string {
	return fmt.Sprintf("holds generation %d, newer than ours", e.current)
}

func snapshotFrom(data []byte) (*snapshot, error) {
	set, problems, err := flagset.Load(data)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("previous snapshot is invalid: %w", problems[0])
	}
	s := &snapshot{set: set, revision: set.Revision(), generation: set.Generation(), keys: set.Keys()}
	if t, ok := set.GeneratedAt(); ok {
		s.generatedAt = t
	}
	return s, nil
}

// fileOutput writes the snapshot to a local JSON file atomically.
type fileOutput struct {
	path string
	mode os.FileMode
}

func (f *fileOutput) name() string   { return "file" }
func (f *fileOutput) target() string { return f.path }
func (f *fileOutput) close()         {}

func (f *fileOutput) load(context.Context) (*snapshot, error) {
	// A writer killed mid-publish leaves its temp file behind (the snapshot itself is
	// intact: the rename never happened). Only one daemon writes this path, so at
	// start any such file is garbage.
	if stale, _ := filepath.Glob(filepath.Join(filepath.Dir(f.path), "."+filepath.Base(f.path)+".tmp-*")); len(stale) > 0 {
		for _, p := range stale {
			_ = os.Remove(p)
		}
	}
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.path, err)
	}
	s, err := snapshotFrom(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	return s, nil
}

func (f *fileOutput) check(context.Context) (string, bool) { return "", false }

func (f *fileOutput) publish(_ context.Context, s *snapshot) error {
	if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
		return fmt.Errorf("create directory for %s: %w", f.path, err)
	}
	return transport.WriteFileAtomic(f.path, s.bytes, f.mode)
}

// redisOutput publishes with transport.Publish (atomic, never backwards); with an
// elector, only the leader writes, fenced (ha.PublishAsLeader).
type redisOutput struct {
	client   *redis.Client
	prefix   string
	redacted string
	el       ha.Elector
}

func newRedisOutput(c *RedisOutputConfig, el ha.Elector) (*redisOutput, error) {
	opts, err := redisOptions(c)
	if err != nil {
		return nil, err
	}
	return &redisOutput{client: redis.NewClient(opts), prefix: c.Prefix, redacted: RedactedRedisURL(c.URL) + " prefix " + c.Prefix, el: el}, nil
}

// redisOptions are the client options of the Redis output (also used by the Redis
// elector, which must talk to the same Redis).
func redisOptions(c *RedisOutputConfig) (*redis.Options, error) {
	opts, err := redis.ParseURL(c.URL)
	if err != nil {
		msg := err.Error()
		if u, perr := url.Parse(c.URL); perr == nil {
			if pw, ok := u.User.Password(); ok && pw != "" {
				msg = strings.ReplaceAll(msg, pw, "xxxxx") // errors may quote the URL
			}
		}
		return nil, fmt.Errorf("outputs.redis.url: %s", msg)
	}
	// go-redis sets TLSConfig exactly for rediss:// (ServerName = the URL's host);
	// validate rejects tls keys for other schemes.
	if t := c.TLS; opts.TLSConfig != nil {
		if t.CAFile != "" {
			// Read here, not kept from validation: the config holds only comparable
			// values (reloads compare it with ==).
			pool, err := loadCAPool(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("outputs.redis.tls.caFile: %w", err)
			}
			opts.TLSConfig.RootCAs = pool
		}
		if t.ServerName != "" {
			opts.TLSConfig.ServerName = t.ServerName
		}
		if t.InsecureSkipVerify {
			opts.TLSConfig.InsecureSkipVerify = true
		}
	}
	// Fail fast when Redis is down: the file output must not wait on it, and the
	// catch-up loop retries with backoff.
	opts.DialTimeout = 2 * time.Second
	opts.ReadTimeout = 3 * time.Second
	opts.WriteTimeout = 3 * time.Second
	opts.MaxRetries = 1
	return opts, nil
}

func (r *redisOutput) name() string   { return "redis" }
func (r *redisOutput) target() string { return r.redacted }
func (r *redisOutput) close()         { _ = r.client.Close() }

func (r *redisOutput) load(ctx context.Context) (*snapshot, error) {
	gen, err := transport.ReadGeneration(ctx, r.client, r.prefix)
	if err != nil {
		return nil, err
	}
	data, err := transport.Read(ctx, r.client, r.prefix)
	if errors.Is(err, transport.ErrNoSnapshot) {
		if gen > 0 {
			return &snapshot{generation: gen}, nil
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s, err := snapshotFrom(data)
	if err != nil {
		// Keep the generation so ours stays above it.
		return &snapshot{generation: gen}, nil
	}
	s.generation = max(s.generation, gen)
	return s, nil
}

func (r *redisOutput) check(ctx context.Context) (string, bool) {
	rev, err := r.client.Get(ctx, transport.KeysFor(r.prefix).Revision).Result()
	if errors.Is(err, redis.Nil) {
		return "", true
	}
	if err != nil {
		return "", false
	}
	return rev, true
}

func (r *redisOutput) publish(ctx context.Context, s *snapshot) error {
	var err error
	if r.el != nil {
		// ha.ErrNotLeader / ha.ErrFenced go back as they are: catchUp treats them as
		// standby, not as failures.
		err = ha.PublishAsLeader(ctx, r.el, r.client, r.prefix, s.bytes, s.revision, s.generation)
	} else {
		err = transport.Publish(ctx, r.client, r.prefix, s.bytes, s.revision, s.generation)
	}
	var stale *transport.StaleError
	if errors.As(err, &stale) {
		return &staleError{current: stale.Current}
	}
	return err
}
