package daemon

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// fileCheckInterval bounds how often watchedFiles looks at its files again.
const fileCheckInterval = time.Second

// watchedFiles is the parsed content of a few files (a mounted Secret: token files, a
// TLS certificate and its key), read again when one of them changes (size or mtime),
// looked at no more than once per fileCheckInterval. A change that does not parse
// keeps the previous value: rotating a Secret must not lock everyone out halfway.
type watchedFiles[T any] struct {
	paths []string
	parse func(contents [][]byte) (T, error)

	mu      sync.Mutex
	checked time.Time
	stamps  []fileStamp
	val     T
	err     error // the last failed reload, reported once
}

// newWatchedFiles reads and parses paths now; an error names the first bad file.
func newWatchedFiles[T any](parse func([][]byte) (T, error), paths ...string) (*watchedFiles[T], error) {
	w := &watchedFiles[T]{paths: paths, parse: parse}
	stamps, val, err := w.load()
	if err != nil {
		return nil, err
	}
	w.stamps, w.val, w.checked = stamps, val, time.Now()
	return w, nil
}

func (w *watchedFiles[T]) load() ([]fileStamp, T, error) {
	var zero T
	stamps := make([]fileStamp, len(w.paths))
	contents := make([][]byte, len(w.paths))
	for i, p := range w.paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, zero, err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, zero, err
		}
		stamps[i], contents[i] = stampOf(st), b
	}
	val, err := w.parse(contents)
	if err != nil {
		return nil, zero, err
	}
	return stamps, val, nil
}

// get returns the current value. reloadErr is non-nil (once per failure) when the
// files changed but could not be read or parsed; the previous value is returned then.
func (w *watchedFiles[T]) get(now time.Time) (val T, reloadErr error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.checked) < fileCheckInterval {
		return w.val, nil
	}
	w.checked = now
	changed := false
	for i, p := range w.paths {
		st, err := os.Stat(p)
		if err != nil || !stampOf(st).same(w.stamps[i]) {
			changed = true
			break
		}
	}
	if !changed {
		return w.val, nil
	}
	stamps, val, err := w.load()
	if err != nil {
		first := w.err == nil
		w.err = err
		if first {
			return w.val, fmt.Errorf("reloading %v: %w (keeping the previous content)", w.paths, err)
		}
		return w.val, nil
	}
	w.stamps, w.val, w.err = stamps, val, nil
	return w.val, nil
}
