package transport

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// FoundSnapshot is one snapshot key found by FindSnapshots.
type FoundSnapshot struct {
	Prefix string // what a reader is configured with to read it
	Key    string // the snapshot key itself
	Legacy bool   // old key shape (no hash tag): current readers do not read it
}

func (f FoundSnapshot) String() string {
	if f.Legacy {
		return fmt.Sprintf("%s (old key names, %s)", f.Prefix, f.Key)
	}
	return f.Prefix
}

// FindLimits bound a FindSnapshots call: it is made on a reader's error path and
// must not load a big Redis.
type FindLimits struct {
	Count   int64         // SCAN COUNT hint per call (default 500)
	MaxKeys int           // stop after this many snapshot keys (default 20)
	Timeout time.Duration // stop after this long (default 500ms)
}

func (l FindLimits) withDefaults() FindLimits {
	if l.Count <= 0 {
		l.Count = 500
	}
	if l.MaxKeys <= 0 {
		l.MaxKeys = 20
	}
	if l.Timeout <= 0 {
		l.Timeout = 500 * time.Millisecond
	}
	return l
}

// FindSnapshots lists the snapshot keys present (SCAN MATCH *:snapshot, on every
// master of a cluster), in both key shapes, sorted. It is bounded by lim; complete
// is false when a bound stopped it before the whole key space was scanned (the
// list may then miss some).
func FindSnapshots(ctx context.Context, c redis.UniversalClient, lim FindLimits) (found []FoundSnapshot, complete bool, err error) {
	lim = lim.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	var (
		mu   sync.Mutex
		keys = map[string]bool{}
	)
	complete = true
	scanOne := func(ctx context.Context, node redis.Cmdable) error {
		var cursor uint64
		for {
			batch, next, err := node.Scan(ctx, cursor, "*:snapshot", lim.Count).Result()
			if err != nil {
				if ctx.Err() != nil { // the time bound, not a failure
					mu.Lock()
					complete = false
					mu.Unlock()
					return nil
				}
				return err
			}
			mu.Lock()
			for _, k := range batch {
				keys[k] = true
			}
			full := len(keys) >= lim.MaxKeys
			if full && next != 0 {
				complete = false
			}
			mu.Unlock()
			if next == 0 || full {
				return nil
			}
			cursor = next
		}
	}
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return scanOne(ctx, n) })
	} else {
		err = scanOne(ctx, c)
	}
	if err != nil {
		return nil, false, fmt.Errorf("redis scan for snapshot keys: %w", err)
	}
	for k := range keys {
		if p, legacy, ok := PrefixOfSnapshotKey(k); ok {
			found = append(found, FoundSnapshot{Prefix: p, Key: k, Legacy: legacy})
		}
	}
	slices.SortFunc(found, func(a, b FoundSnapshot) int { return strings.Compare(a.Key, b.Key) })
	if len(found) > lim.MaxKeys {
		found, complete = found[:lim.MaxKeys], false
	}
	return found, complete, nil
}

// NoSnapshotError is a missing snapshot explained: which prefix was read and which
// ones hold a snapshot, so a reader pointed at the wrong prefix says how to fix it.
// It wraps ErrNoSnapshot.
type NoSnapshotError struct {
	Prefix   string
	Key      string
	Present  []FoundSnapshot
	Complete bool  // Present lists every snapshot key (no bound was hit)
	ScanErr  error // the listing failed (e.g. SCAN not allowed); Present is empty
}

func (e *NoSnapshotError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "no snapshot under prefix %q (key %s)", e.Prefix, e.Key)
	switch {
	case e.ScanErr != nil:
		fmt.Fprintf(&b, "; could not list the prefixes present: %v", e.ScanErr)
	case len(e.Present) == 0:
		b.WriteString("; no snapshot key (*:snapshot) found in this Redis: has the daemon published here?")
	default:
		names := make([]string, len(e.Present))
		for i, f := range e.Present {
			names[i] = f.String()
		}
		more := ""
		if !e.Complete {
			more = ", and maybe more"
		}
		fmt.Fprintf(&b, "; snapshots present under: %s%s (the daemon's prefix is flagsync:<flagSetId> unless outputs.redis.prefix says otherwise)",
			strings.Join(names, ", "), more)
	}
	return b.String()
}

func (e *NoSnapshotError) Unwrap() error { return ErrNoSnapshot }

// ExplainNoSnapshot builds the NoSnapshotError for prefix, listing with FindSnapshots.
func ExplainNoSnapshot(ctx context.Context, c redis.UniversalClient, prefix string) *NoSnapshotError {
	found, complete, err := FindSnapshots(ctx, c, FindLimits{})
	return &NoSnapshotError{Prefix: prefix, Key: KeysFor(prefix).Snapshot, Present: found, Complete: complete, ScanErr: err}
}
