package provider

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

// maxFileSize bounds a snapshot read; flagset.Parse refuses more than 64 MiB anyway,
// reading one byte past that lets it report the limit instead of us reading forever.
const maxFileSize = 64<<20 + 1

// NewFile returns a provider serving the snapshot JSON file at path.
//
// The file is expected to be replaced atomically (rename), as transport.WriteFileAtomic
// does; it may be a symlink that is swapped (Kubernetes ConfigMap "..data" swap).
// The provider watches the file's DIRECTORY with fsnotify, which sees rename-replaces
// and symlink swaps that a watch on the file itself would miss, and additionally
// stats the file every poll interval. It reloads when the resolved file's identity
// (device+inode), size or mtime differ from the loaded one.
func NewFile(path string, opts ...Option) *Provider {
	return newProvider(&fileSource{path: path}, opts)
}

type fileSource struct {
	path string
}

func (f *fileSource) describe() string { return "file " + f.path }

func (f *fileSource) run(ctx context.Context, p *Provider) {
	w := newDirWatcher(p, f.path)
	defer w.close()

	var loaded os.FileInfo // identity of the file last loaded (or rejected)
	check := func() {
		loaded = f.check(p, loaded)
		w.sync() // the resolved target may live in another directory
	}
	check()

	tick := time.NewTicker(p.o.pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-w.events():
			if !ok {
				w.broken()
				continue
			}
			// Any change in the directory may be ours (rename-replace, ..data swap):
			// a stat decides, which is cheap.
			check()
		case err, ok := <-w.errors():
			if !ok {
				w.broken()
				continue
			}
			p.log.Warn("file watch error; relying on polling until it recovers", "err", err)
		case <-tick.C:
			check()
		}
	}
}

// check opens the file, and loads it when it is not the file last loaded. Reading
// through the opened descriptor ties the content to the identity we compare: a
// rename-replace between stat and read cannot mix two files.
func (f *fileSource) check(p *Provider, loaded os.FileInfo) os.FileInfo {
	fh, err := os.Open(f.path)
	if err != nil {
		p.readFailed(fmt.Errorf("open %s: %w", f.path, err))
		return loaded
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		p.readFailed(fmt.Errorf("stat %s: %w", f.path, err))
		return loaded
	}
	if loaded != nil && sameVersion(loaded, fi) {
		p.readOK()
		return loaded
	}
	// Sized from the stat: one allocation instead of ReadAll's doubling.
	buf := bytes.NewBuffer(make([]byte, 0, min(fi.Size(), maxFileSize)+bytes.MinRead))
	_, err = buf.ReadFrom(io.LimitReader(fh, maxFileSize))
	data := buf.Bytes()
	if err != nil {
		p.readFailed(fmt.Errorf("read %s: %w", f.path, err))
		return loaded
	}
	// A rejected file is remembered too: it is not re-parsed until it changes.
	_ = p.load(data, "file "+f.path)
	return fi
}

func sameVersion(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// dirWatcher watches the directory of the configured path and, when the path is a
// symlink into another directory, that directory too. Watch failures degrade to
// polling and are retried on every check.
type dirWatcher struct {
	p      *Provider
	path   string
	w      *fsnotify.Watcher
	dirs   map[string]bool // directories currently watched
	failed bool            // a failure was already logged
}

func newDirWatcher(p *Provider, path string) *dirWatcher {
	d := &dirWatcher{p: p, path: path, dirs: map[string]bool{}}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		p.log.Warn("fsnotify unavailable; polling only", "err", err)
		return d
	}
	d.w = w
	d.sync()
	return d
}

// sync adds watches for the wanted directories that are not watched yet. A directory
// that was removed drops out of the inotify watch list by itself, so it is re-added
// here once it exists again.
func (d *dirWatcher) sync() {
	if d.w == nil {
		return
	}
	watched := map[string]bool{}
	for _, dir := range d.w.WatchList() {
		watched[dir] = true
	}
	want := []string{filepath.Dir(d.path)}
	if target, err := filepath.EvalSymlinks(d.path); err == nil {
		if td := filepath.Dir(target); td != want[0] {
			want = append(want, td)
		}
	}
	for dir := range d.dirs {
		if !watched[dir] || !slices.Contains(want, dir) {
			if watched[dir] {
				_ = d.w.Remove(dir)
			}
			delete(d.dirs, dir)
		}
	}
	for _, dir := range want {
		if d.dirs[dir] {
			continue
		}
		if err := d.w.Add(dir); err != nil {
			if !d.failed {
				d.failed = true
				d.p.log.Warn("cannot watch directory; polling until it can be watched", "dir", dir, "err", err)
			}
			continue
		}
		d.dirs[dir] = true
	}
}

// broken drops a watcher whose channels closed; polling continues.
func (d *dirWatcher) broken() {
	if d.w != nil {
		d.p.log.Warn("file watcher closed; polling only")
		_ = d.w.Close()
		d.w = nil
	}
}

func (d *dirWatcher) events() <-chan fsnotify.Event {
	if d.w == nil {
		return nil // blocks forever in select: polling only
	}
	return d.w.Events
}

func (d *dirWatcher) errors() <-chan error {
	if d.w == nil {
		return nil
	}
	return d.w.Errors
}

func (d *dirWatcher) close() {
	if d.w != nil {
		_ = d.w.Close()
	}
}
