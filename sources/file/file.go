// Package file is the flagsync source for flag definitions kept in git: one YAML or
// JSON document, or a directory of them merged in lexical order. It watches the
// directory with fsnotify so edits are picked up without waiting for the schedule.
package file

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/sources"
)

// Config is the type-specific configuration of a file source.
type Config struct {
	// Path is a .yaml/.yml/.json file or a directory of them (not recursive).
	Path string `yaml:"path"`
	// MaxBytes bounds the bytes one fetch reads (all files of a directory together);
	// 0 means DefaultMaxBytes. At most flagset.MaxDocumentSize.
	MaxBytes int64 `yaml:"maxBytes"`
}

// DefaultMaxBytes is the input limit of a file source. The daemon peaks at up to
// about 29 times its input (measured with the densest input, tiny flags: parsed
// definitions, the compiled set and the previous snapshot held at once; see
// docs/CONFIG.md, "Memory"), so 8 MiB keeps the largest accepted input under the
// chart's default memory limit of 256 Mi.
const DefaultMaxBytes = 8 << 20

// Options are the non-YAML settings of a file source.
type Options struct {
	// Quiet is how long the files must have gone unmodified before Fetch trusts what
	// it reads (the daemon passes the source's watchDebounce). A file rewritten in
	// place in several writes can be valid YAML when cut short, holding fewer flags;
	// reading only quiet files keeps such a half-written file out of the snapshot.
	// 0 reads at once.
	Quiet time.Duration
}

// Source reads one file or one directory of flag documents.
type Source struct {
	name     string
	path     string
	quiet    time.Duration
	maxBytes int64

	mu      sync.Mutex
	lastSum [sha256.Size]byte // of the file names and contents of the last good fetch
	lastRes *sources.Result
}

// New returns a file source. Path is used as given (relative paths resolve against
// the working directory).
func New(name string, c Config, opts Options) (*Source, error) {
	if strings.TrimSpace(c.Path) == "" {
		return nil, errors.New("path: required")
	}
	if opts.Quiet < 0 {
		return nil, fmt.Errorf("quiet time must not be negative, got %s", opts.Quiet)
	}
	switch {
	case c.MaxBytes == 0:
		c.MaxBytes = DefaultMaxBytes
	case c.MaxBytes < 0 || c.MaxBytes > flagset.MaxDocumentSize:
		return nil, fmt.Errorf("maxBytes: must be between 1 and %d (64 MiB), got %d", flagset.MaxDocumentSize, c.MaxBytes)
	}
	return &Source{name: name, path: filepath.Clean(c.Path), quiet: opts.Quiet, maxBytes: c.MaxBytes}, nil
}

// Name implements sources.Source.
func (s *Source) Name() string { return s.name }

// Path is the configured file or directory.
func (s *Source) Path() string { return s.path }

// isFlagFile tells whether a directory entry is a document this source reads.
// Hidden files are skipped so editors' swap files and our own temp files never count.
func isFlagFile(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// files lists the documents to read, in precedence order (lexical for a directory).
func (s *Source) files() ([]string, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return nil, fmt.Errorf("file source %s: %w", s.path, err)
	}
	if !fi.IsDir() {
		return []string{s.path}, nil
	}
	entries, err := os.ReadDir(s.path)
	if err != nil {
		return nil, fmt.Errorf("file source %s: %w", s.path, err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() || !isFlagFile(e.Name()) {
			continue
		}
		out = append(out, filepath.Join(s.path, e.Name()))
	}
	sort.Strings(out)
	return out, nil
}

// rel is the name a file is reported under: its path as configured (so relative to
// the working directory when the config uses relative paths), with forward slashes.
func (s *Source) rel(p string) string { return filepath.ToSlash(p) }

// Fetch implements sources.Source. A file that cannot be read or parsed fails the
// whole source (the daemon keeps the last good result); a key defined in two files
// is a per-flag problem and the key is left out (neither file is trusted to win).
//
// Changed files modified within the quiet time (Options.Quiet) may be half written:
// Fetch waits until they have been quiet that long and reads them again, so a file
// still being written when ctx ends fails the fetch instead of being read.
//
// Unchanged content returns the previous Result (results are never mutated), so a
// scheduled resync of an unchanged tree neither re-parses nor allocates a new copy.
func (s *Source) Fetch(ctx context.Context) (*sources.Result, error) {
	for {
		paths, contents, sum, busy, err := s.read(ctx)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		if s.lastRes != nil && sum == s.lastSum {
			res := s.lastRes
			s.mu.Unlock()
			return res, nil
		}
		s.mu.Unlock()
		if busy > 0 {
			if !sources.Sleep(ctx, busy) {
				return nil, fmt.Errorf("file source %s: still being written (not quiet for %s): %w", s.path, s.quiet, ctx.Err())
			}
			continue
		}
		res, err := s.parse(paths, contents)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.lastSum, s.lastRes = sum, res
		s.mu.Unlock()
		return res, nil
	}
}

// read reads every document and hashes names and contents. busy > 0 means some file
// (or, for a directory, the directory) was modified less than the quiet time ago,
// before or during the read, and tells how long until it is quiet.
func (s *Source) read(ctx context.Context) (paths []string, contents [][]byte, sum [sha256.Size]byte, busy time.Duration, err error) {
	paths, err = s.files()
	if err != nil {
		return nil, nil, sum, 0, err
	}
	contents = make([][]byte, len(paths))
	h := sha256.New()
	left := s.maxBytes
	for i, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, nil, sum, 0, err
		}
		data, err := readLimited(p, left)
		if errors.Is(err, errTooLarge) {
			return nil, nil, sum, 0, fmt.Errorf("file source %s: more than maxBytes %d bytes (%.1f MiB) to read; raise maxBytes together with the memory limit (docs/CONFIG.md, Memory): %w",
				s.path, s.maxBytes, float64(s.maxBytes)/(1<<20), err)
		}
		if err != nil {
			return nil, nil, sum, 0, fmt.Errorf("file source %s: %w", p, err)
		}
		left -= int64(len(data))
		contents[i] = data
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(data))
		h.Write(data)
	}
	h.Sum(sum[:0])
	if s.quiet > 0 {
		// Checked after reading: a write during the read is recent too.
		busy = s.untilQuiet(paths, time.Now())
	}
	return paths, contents, sum, busy, nil
}

// untilQuiet is how long until the newest modification time among paths (and the
// directory, whose time changes when files come and go) is Quiet old; 0 when it
// already is. A time further in the future than Quiet is clock skew (a copied file),
// not a write in progress, and does not hold reading back.
func (s *Source) untilQuiet(paths []string, now time.Time) time.Duration {
	var newest time.Time
	for _, p := range append(slices.Clip(paths), s.path) {
		if fi, err := os.Stat(p); err == nil && fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
	}
	wait := newest.Add(s.quiet).Sub(now)
	if wait <= 0 || wait > 2*s.quiet {
		return 0
	}
	return wait
}

var errTooLarge = errors.New("input too large")

// readLimited reads the file at p, failing with errTooLarge when it is longer than
// limit, without reading (or allocating for) more than limit+1 bytes.
func readLimited(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := int64(0)
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	if size > limit {
		return nil, fmt.Errorf("%s is %d bytes: %w", p, size, errTooLarge)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(f, limit+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, fmt.Errorf("%s grew past %d bytes while read: %w", p, limit, errTooLarge)
	}
	return buf.Bytes(), nil
}

func (s *Source) parse(paths []string, contents [][]byte) (*sources.Result, error) {
	res := &sources.Result{
		Definitions: map[string]*flagset.Flag{},
		Evaluators:  map[string]json.RawMessage{},
	}
	flagFile := map[string]string{}
	evalFile := map[string]string{}
	dup := map[string]bool{}
	for i, p := range paths {
		doc, err := flagset.Parse(contents[i])
		contents[i] = nil // let the raw bytes go while the rest parses
		if err != nil {
			return nil, fmt.Errorf("file source %s: %w", p, err)
		}
		if err := documentProblems(p, doc); err != nil {
			return nil, err
		}
		rel := s.rel(p)
		origin := sources.Origin{Scheme: "file", Location: rel}
		source := origin.String() // one string shared by every flag of the file
		for _, key := range slices.Sorted(maps.Keys(doc.Flags)) {
			f := doc.Flags[key]
			if prev, ok := flagFile[key]; ok {
				res.Problems = append(res.Problems, flagset.Problem{
					Flag: key, Path: "flags." + key,
					Message: fmt.Sprintf("defined in both %s and %s (source %s); left out", prev, rel, s.name),
				})
				dup[key] = true
				continue
			}
			flagFile[key] = rel
			if f == nil {
				res.Problems = append(res.Problems, flagset.Problem{Flag: key, Path: "flags." + key, Message: "null definition in " + rel})
				dup[key] = true
				continue
			}
			// The document was parsed just now and belongs to us: set the source in
			// place rather than copying 10k metadata maps.
			if _, ok := f.Metadata[flagset.MetaSource]; !ok {
				if f.Metadata == nil {
					f.Metadata = make(map[string]any, 1)
				}
				f.Metadata[flagset.MetaSource] = source
			}
			res.Definitions[key] = f
			res.SetOrigin(key, origin)
		}
		for name, ev := range doc.Evaluators {
			if prev, ok := evalFile[name]; ok {
				res.Problems = append(res.Problems, flagset.Problem{
					Path:    "$evaluators." + name,
					Message: fmt.Sprintf("defined in both %s and %s; the first is used", prev, rel),
				})
				continue
			}
			evalFile[name] = rel
			res.Evaluators[name] = ev
		}
	}
	for key := range dup {
		delete(res.Definitions, key)
		delete(res.Origins, key)
	}
	return res, nil
}

// documentProblems fails the file for document-level mistakes such as a misspelt
// "flags:" key, which would otherwise read as a file without flags and silently drop
// them. Flag problems are left to the daemon (one bad flag is dropped alone), and
// so are $evaluators; file-level metadata is ignored anyway.
func documentProblems(path string, doc *flagset.Document) error {
	shell := *doc
	shell.Flags = map[string]*flagset.Flag{} // validate the document without its flags: cheap
	var msgs []string
	for _, p := range shell.Validate() {
		if p.Flag != "" || strings.HasPrefix(p.Path, "$evaluators") || strings.HasPrefix(p.Path, "metadata") {
			continue
		}
		msgs = append(msgs, p.Error())
	}
	if len(msgs) > 0 {
		return fmt.Errorf("file source %s: %s", path, strings.Join(msgs, "; "))
	}
	return nil
}

// Watch implements sources.Watcher. It watches the directory (the file's parent for a
// single file) because editors and atomic writers replace files by rename, which a
// watch on the file itself would lose. Debouncing is the daemon's job.
func (s *Source) Watch(ctx context.Context, changed func()) error {
	dir, single := s.path, ""
	if fi, err := os.Stat(s.path); err != nil || !fi.IsDir() {
		dir, single = filepath.Dir(s.path), filepath.Base(s.path)
	}
	missed := false
	for {
		// After a broken watch, report a possible change once the watch is back:
		// events may have been missed meanwhile.
		onWatching := func() {
			if missed {
				missed = false
				changed()
			}
		}
		// watchOnce ends when the directory vanished or the watcher broke. Its error
		// is not reported: the next Fetch reports a missing path as a source error,
		// which the daemon logs and shows in its status. Retry.
		_ = s.watchOnce(ctx, dir, single, changed, onWatching)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		missed = true
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (s *Source) watchOnce(ctx context.Context, dir, single string, changed, onWatching func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("file source %s: watch: %w", s.path, err)
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("file source %s: watch %s: %w", s.path, dir, err)
	}
	onWatching()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("watcher closed")
			}
			base := filepath.Base(ev.Name)
			if filepath.Clean(ev.Name) == filepath.Clean(dir) {
				if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
					return errors.New("watched directory removed")
				}
				continue
			}
			if single != "" && base != single {
				continue
			}
			if single == "" && !isFlagFile(base) {
				continue
			}
			if ev.Has(fsnotify.Chmod) && !ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Create) {
				continue
			}
			changed()
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("watcher closed")
			}
			return fmt.Errorf("file source %s: watch: %w", s.path, err)
		}
	}
}
