package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
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
	// held returns what the output holds now (the zero holding when it holds no
	// snapshot), cheaply when nothing changed since the daemon last looked. An error
	// means it cannot tell (Redis unreachable).
	held(ctx context.Context) (holding, error)
	// publish writes s unless the output holds a newer generation (*staleError).
	publish(ctx context.Context, s *snapshot) error
	// watch calls changed whenever what the output holds may have changed behind the
	// daemon's back (a file deleted or replaced, a Redis restarted empty or written by
	// another process), until ctx ends. changed must not block. log hears of a watch
	// that cannot be set up.
	watch(ctx context.Context, log *slog.Logger, changed func())
	close()
}

// holding is the snapshot an output holds: its revision and generation ("" and 0
// when it holds none, or something that is not a snapshot).
type holding struct {
	revision   string
	generation int64
}

// staleError reports that an output already holds a newer generation.
type staleError struct{ current int64 }

func (e *staleError) Error() string {
	return fmt.Sprintf("holds generation %d, newer than ours", e.current)
}

func snapshotFrom(data []byte) (*snapshot, error) {
	// The publishing compile: the daemon writes this snapshot to its outputs again,
	// so the set keeps the flags' canonical encoding.
	doc, err := flagset.Parse(data)
	if err != nil {
		return nil, err
	}
	set, problems := flagset.CompileStrict(doc)
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

	mu    sync.Mutex
	known *fileHolding // the file as last written, loaded or read by the daemon
}

// fileHolding is what a file held when the daemon last looked at it, identified by
// its stamp so a later look costs one stat while the file is untouched.
type fileHolding struct {
	stamp fileStamp
	holding
}

// fileStamp identifies one version of a file: an atomic replace (ours or another
// writer's) makes a new inode, an edit in place changes the size or mtime. The
// ctime is left out because our own rename changes it.
type fileStamp struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
}

// same tells whether a and b are one version of a file (times compared as instants).
func (a fileStamp) same(b fileStamp) bool {
	return a.dev == b.dev && a.ino == b.ino && a.size == b.size && a.mtime.Equal(b.mtime)
}

func stampOf(fi os.FileInfo) fileStamp {
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.dev, st.ino = uint64(sys.Dev), sys.Ino //nolint:unconvert // Dev is int32 on some platforms
	}
	return st
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
	fh, err := os.Open(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.path, err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.path, err)
	}
	data, err := readSnapshotFile(fh, fi)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.path, err)
	}
	s, err := snapshotFrom(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	f.remember(fileHolding{stamp: stampOf(fi), holding: holding{revision: s.revision, generation: s.generation}})
	return s, nil
}

func (f *fileOutput) remember(h fileHolding) {
	f.mu.Lock()
	f.known = &h
	f.mu.Unlock()
}

// held stats the file; only when it is not the version the daemon last saw does it
// read the file's metadata. A file that cannot be read or is not a snapshot holds
// nothing (it is rewritten).
func (f *fileOutput) held(context.Context) (holding, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return holding{}, nil
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return holding{}, nil
	}
	st := stampOf(fi)
	f.mu.Lock()
	known := f.known
	f.mu.Unlock()
	if known != nil && known.stamp.same(st) {
		return known.holding, nil
	}
	data, err := readSnapshotFile(fh, fi)
	if err != nil {
		return holding{}, nil
	}
	h := holdingOf(data)
	f.remember(fileHolding{stamp: st, holding: h})
	return h, nil
}

// readSnapshotFile reads an open snapshot file, at most flagset.MaxDocumentSize+1
// bytes (a larger one is refused by every reader anyway).
func readSnapshotFile(fh *os.File, fi os.FileInfo) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, min(fi.Size(), flagset.MaxDocumentSize)+bytes.MinRead))
	_, err := buf.ReadFrom(io.LimitReader(fh, flagset.MaxDocumentSize+1))
	return buf.Bytes(), err
}

// holdingOf reads the revision and generation a snapshot document declares.
func holdingOf(data []byte) holding {
	rev, gen := flagset.DeclaredVersion(data)
	return holding{revision: rev, generation: gen}
}

// publish refuses to put a file behind the generation it holds (readers reject a
// generation going backwards): another writer's newer snapshot, e.g. a
// `flagsync sync --force` run beside the daemon, makes the daemon re-stamp above it.
func (f *fileOutput) publish(ctx context.Context, s *snapshot) error {
	if h, _ := f.held(ctx); h.revision != s.revision && h.generation >= s.generation {
		return &staleError{current: h.generation}
	}
	if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
		return fmt.Errorf("create directory for %s: %w", f.path, err)
	}
	fi, err := transport.WriteFileAtomicStat(f.path, s.bytes, f.mode)
	if err != nil {
		return err
	}
	f.remember(fileHolding{stamp: stampOf(fi), holding: holding{revision: s.revision, generation: s.generation}})
	return nil
}

// watch follows the file's directory with fsnotify: any event naming the file
// (removed, replaced, written) may mean it no longer holds the daemon's snapshot.
// Our own writes trigger it too; the check that follows is then one stat. Without a
// watch (the directory missing, or inotify's instances used up by other processes)
// it looks every second instead, so a replaced or deleted file is still noticed.
func (f *fileOutput) watch(ctx context.Context, log *slog.Logger, changed func()) {
	dir, base := filepath.Dir(f.path), filepath.Base(f.path)
	polling := false
	for {
		watched, err := watchFileOnce(ctx, dir, base, changed)
		if ctx.Err() != nil {
			return
		}
		wait := time.Second
		switch {
		case watched:
			// The directory went away (with the file) or the watcher broke: watch
			// again soon.
			wait = 100 * time.Millisecond
			polling = false
		case !polling && !errors.Is(err, fs.ErrNotExist):
			log.Warn("file output: cannot watch its directory; checking the file every second instead", "path", f.path, "err", err)
			polling = true
		}
		// Look now whatever happened: this is the poll while there is no watch.
		changed()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// watchFileOnce watches dir until it is removed, the watcher fails or ctx ends;
// watched tells whether the watch was ever set up.
func watchFileOnce(ctx context.Context, dir, base string, changed func()) (watched bool, err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return false, fmt.Errorf("watch %s: %w", dir, err)
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		return false, fmt.Errorf("watch %s: %w", dir, err)
	}
	// Events before the watch existed are lost: look once now.
	changed()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case ev, ok := <-w.Events:
			if !ok {
				return true, errors.New("watcher closed")
			}
			if filepath.Clean(ev.Name) == filepath.Clean(dir) {
				if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
					return true, errors.New("watched directory removed")
				}
				continue
			}
			if filepath.Base(ev.Name) == base {
				changed()
			}
		case err, ok := <-w.Errors:
			if !ok {
				return true, errors.New("watcher closed")
			}
			return true, fmt.Errorf("watch %s: %w", dir, err)
		}
	}
}

// redisOutput publishes with transport.Publish (atomic, never backwards); with an
// elector, only the leader writes, fenced (ha.PublishAsLeader).
type redisOutput struct {
	client   redis.UniversalClient
	prefix   string
	legacy   bool // also write the old key names (outputs.redis.legacyKeys)
	redacted string
	el       ha.Elector

	mu   sync.Mutex
	seen *redisSeen // what the last look found, or the last successful write
}

func newRedisOutput(c *RedisOutputConfig, el ha.Elector) (*redisOutput, error) {
	client, err := newRedisClient(c)
	if err != nil {
		return nil, err
	}
	return &redisOutput{client: client, prefix: c.Prefix, legacy: c.WritesLegacyKeys(), redacted: redisTarget(c), el: el}, nil
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
		data, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if r.legacy {
		// Upgraded from a daemon that wrote only the old names: continue from there.
		old, oldGen, err := transport.ReadLegacy(ctx, r.client, r.prefix)
		if err != nil {
			return nil, err
		}
		if oldGen > gen {
			data, gen = old, oldGen
		}
	}
	if data == nil {
		if gen > 0 {
			return &snapshot{generation: gen}, nil
		}
		return nil, nil
	}
	s, err := snapshotFrom(data)
	if err != nil {
		// Keep the generation so ours stays above it.
		return &snapshot{generation: gen}, nil
	}
	s.generation = max(s.generation, gen)
	return s, nil
}

func (r *redisOutput) held(ctx context.Context) (holding, error) {
	rev, gen, err := transport.ReadHeld(ctx, r.client, r.prefix)
	if err != nil {
		return holding{}, err
	}
	return holding{revision: rev, generation: gen}, nil
}

// redisCheckInterval is how often the Redis output's revision key is read between
// syncs: one GET of a short string, so that a Redis restarted empty (or written by
// another process) is noticed and refilled within about a second, not at the next
// scheduled sync while new readers fail to start.
const redisCheckInterval = 500 * time.Millisecond

// redisSeen is one look at the Redis revision key.
type redisSeen struct {
	revision string
	ok       bool // Redis answered
}

// watch reads the revision key every redisCheckInterval and reports each change from
// what was last seen or written: a different revision, the key gone (restarted
// empty, flushed), or Redis answering again after failing (reconnected). Comparing
// with the last look, not with the daemon's snapshot, reports a standby's leader
// once per change instead of at every look.
func (r *redisOutput) watch(ctx context.Context, _ *slog.Logger, changed func()) {
	t := time.NewTicker(redisCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rev, err := transport.ReadRevision(ctx, r.client, r.prefix)
		now := redisSeen{revision: rev, ok: err == nil || errors.Is(err, transport.ErrNoSnapshot)}
		r.mu.Lock()
		last := r.seen
		r.seen = &now
		r.mu.Unlock()
		// Down: the catch-up retries with backoff; report when it answers again.
		if now.ok && (last == nil || *last != now) {
			changed()
		}
	}
}

func (r *redisOutput) publish(ctx context.Context, s *snapshot) error {
	var err error
	if r.el != nil {
		// ha.ErrNotLeader / ha.ErrFenced go back as they are: catchUp treats them as
		// standby, not as failures.
		err = ha.PublishAsLeader(ctx, r.el, r.client, r.prefix, r.legacy, s.bytes, s.revision, s.generation)
	} else {
		err = transport.PublishWith(ctx, r.client, r.prefix, transport.PublishOptions{Legacy: r.legacy}, s.bytes, s.revision, s.generation)
	}
	var stale *transport.StaleError
	if errors.As(err, &stale) {
		return &staleError{current: stale.Current}
	}
	if err == nil {
		r.mu.Lock()
		r.seen = &redisSeen{revision: s.revision, ok: true}
		r.mu.Unlock()
	}
	return err
}

// checkOutput records what o holds now. An output found no longer holding the
// snapshot the daemon last saw in it (file deleted or replaced, Redis restarted
// empty or overwritten) is reported loudly; catchUp then rewrites it. An output that
// cannot be checked holds nothing known: its status says so, with the error, and it
// counts as lagging until a check succeeds.
func (d *Daemon) checkOutput(ctx context.Context, o *outputState, cur *snapshot) error {
	h, err := o.out.held(ctx)
	now := d.now().UTC()
	d.mu.Lock()
	was := o.revision
	if err != nil {
		o.revision, o.generation = "", 0
		o.lastError, o.lastErrorAt = "check: "+err.Error(), now
	} else {
		o.revision, o.generation = h.revision, h.generation
		if h.revision == cur.revision {
			o.lastError = "" // answered and holds it: an earlier check failure is over
		}
	}
	d.mu.Unlock()
	if err != nil {
		d.metrics.OutputErrors.WithLabelValues(o.out.name()).Inc()
		return fmt.Errorf("check: %w", err)
	}
	if was == cur.revision && h.revision != cur.revision && !leftToLeader(o.out) {
		d.metrics.OutputRepairs.WithLabelValues(o.out.name()).Inc()
		holds := h.revision
		if holds == "" {
			holds = "no snapshot"
		}
		d.log.Warn("output no longer holds the current snapshot; rewriting it", "output", o.out.name(), "target", o.out.target(),
			"revision", cur.revision, "generation", cur.generation, "holds", holds, "holdsGeneration", h.generation)
	}
	return nil
}

// leftToLeader tells whether out is a Redis output this replica does not write
// (an HA standby): what it holds there is the leader's business, not a repair.
func leftToLeader(out output) bool {
	r, ok := out.(*redisOutput)
	return ok && r.el != nil && !r.el.IsLeader()
}

// publishOutcome is the result of a sync that made a new snapshot ("published"),
// corrected by what reached the outputs: "failed" when no output holds it,
// "partial" when some do and another failed. Other results pass through.
func (d *Daemon) publishOutcome(result string) string {
	if result != "published" {
		return result
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.current == nil {
		return result
	}
	holding, failed := 0, 0
	for _, o := range d.outs {
		if o.revision == d.current.revision {
			holding++
		} else {
			failed++
		}
	}
	switch {
	case holding == 0 && failed > 0:
		return "failed"
	case failed > 0:
		return "partial"
	}
	return result
}

// watchOutputs runs every output's watch until ctx ends; repair is called (it must
// not block) when an output may no longer hold the current snapshot.
func (d *Daemon) watchOutputs(ctx context.Context, wg *sync.WaitGroup, repair func()) {
	for _, o := range d.outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.out.watch(ctx, d.log, repair)
		}()
	}
}
