package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/sources"
)

const flagA = `flags:
  a:
    state: ENABLED
    variants: {"on": true, "off": false}
    defaultVariant: "on"
`

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFetchSingleFileSetsSource(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "flags.yaml")
	write(t, p, flagA+`  b:
    state: DISABLED
    variants: {"x": 1}
    defaultVariant: x
    metadata: {source: "team-b"}
`)
	s, err := New("git", Config{Path: p}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Definitions) != 2 {
		t.Fatalf("definitions = %d, want 2", len(res.Definitions))
	}
	if got := res.Definitions["a"].Metadata[flagset.MetaSource]; got != "file:"+filepath.ToSlash(p) {
		t.Errorf("a source = %v", got)
	}
	if got := res.Definitions["b"].Metadata[flagset.MetaSource]; got != "team-b" {
		t.Errorf("b keeps its own source, got %v", got)
	}
	// The typed origin is where the source read each definition, whatever the flag's
	// metadata.source says.
	want := sources.Origin{Scheme: "file", Location: filepath.ToSlash(p)}
	if res.Origins["a"] != want || res.Origins["b"] != want {
		t.Errorf("origins = %+v, want both %+v", res.Origins, want)
	}
}

func TestFetchDirectoryLexicalAndDuplicates(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "10-a.yaml"), flagA)
	write(t, filepath.Join(dir, "20-b.json"), `{"flags":{"a":{"state":"ENABLED","variants":{"x":"x"},"defaultVariant":"x"},"b":{"state":"ENABLED","variants":{"x":"x"},"defaultVariant":"x"}}}`)
	write(t, filepath.Join(dir, ".hidden.yaml"), "not: [valid")
	write(t, filepath.Join(dir, "notes.txt"), "ignored")
	s, _ := New("dir", Config{Path: dir}, Options{})
	res, err := s.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Definitions["a"]; ok {
		t.Error("a key defined in two files must be left out")
	}
	if _, ok := res.Definitions["b"]; !ok {
		t.Error("b missing")
	}
	if _, ok := res.Origins["a"]; ok || res.Origins["b"].Location != filepath.ToSlash(filepath.Join(dir, "20-b.json")) {
		t.Errorf("origins = %+v: b's file, and none for the left-out a", res.Origins)
	}
	if len(res.Problems) != 1 || res.Problems[0].Flag != "a" ||
		!strings.Contains(res.Problems[0].Message, "10-a.yaml") || !strings.Contains(res.Problems[0].Message, "20-b.json") {
		t.Fatalf("problems = %+v, want one naming both files", res.Problems)
	}
}

func TestFetchParseErrorFailsSource(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), flagA)
	write(t, filepath.Join(dir, "b.yaml"), "flags: {b: [unclosed")
	s, _ := New("dir", Config{Path: dir}, Options{})
	if _, err := s.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "b.yaml") {
		t.Fatalf("err = %v, want a parse error naming b.yaml", err)
	}
	write(t, filepath.Join(dir, "b.yaml"), "flgas:\n  b: {}\n")
	if _, err := s.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "flgas: unknown top-level field") {
		t.Fatalf("err = %v, want the misspelt key named", err)
	}
	s2, _ := New("missing", Config{Path: filepath.Join(dir, "nope.yaml")}, Options{})
	if _, err := s2.Fetch(context.Background()); err == nil {
		t.Fatal("missing file must fail the source")
	}
}

func TestNewRequiresPath(t *testing.T) {
	if _, err := New("x", Config{}, Options{}); err == nil || err.Error() != "path: required" {
		t.Fatalf("err = %v", err)
	}
}

func TestWatchSeesWritesAndRenames(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "flags.yaml")
	write(t, p, flagA)
	s, _ := New("git", Config{Path: p}, Options{})
	var n atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, func() { n.Add(1) }) }()
	time.Sleep(100 * time.Millisecond) // let the watch start
	write(t, filepath.Join(dir, "other.yaml"), flagA)
	time.Sleep(100 * time.Millisecond)
	if n.Load() != 0 {
		t.Errorf("a change to another file notified %d times", n.Load())
	}
	tmp := filepath.Join(dir, ".tmp")
	write(t, tmp, flagA)
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n.Load() == 0 {
		t.Fatal("no notification after replacing the file")
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Watch returned %v", err)
	}
}

func TestFetchUnchangedReusesResult(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "flags.yaml")
	write(t, p, flagA)
	s, _ := New("git", Config{Path: p}, Options{})
	r1, err := s.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := s.Fetch(context.Background())
	if r1 != r2 {
		t.Error("unchanged content was parsed again")
	}
	write(t, p, strings.Replace(flagA, `defaultVariant: "on"`, `defaultVariant: "off"`, 1))
	r3, _ := s.Fetch(context.Background())
	if r3 == r1 || *r3.Definitions["a"].DefaultVariant != "off" {
		t.Error("changed content not re-read")
	}
	// A failed fetch does not poison the cache.
	write(t, p, "flags: [")
	if _, err := s.Fetch(context.Background()); err == nil {
		t.Fatal("want a parse error")
	}
	write(t, p, strings.Replace(flagA, `defaultVariant: "on"`, `defaultVariant: "off"`, 1))
	if r4, err := s.Fetch(context.Background()); err != nil || r4 != r3 {
		t.Errorf("r4 = %p (%v), want the cached %p", r4, err, r3)
	}
}

func TestWatchSurvivesDirectoryRecreation(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "flags")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "a.yaml"), flagA)
	s, _ := New("dir", Config{Path: dir}, Options{})
	var n atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Watch(ctx, func() { n.Add(1) }) }()
	time.Sleep(100 * time.Millisecond)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "a.yaml"), flagA)
	before := n.Load()
	// The watch comes back (retry after 1 s) and reports the possible change...
	deadline := time.Now().Add(10 * time.Second)
	for n.Load() == before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n.Load() == before {
		t.Fatal("no notification after the directory came back")
	}
	// ...and watches the new directory.
	time.Sleep(50 * time.Millisecond)
	before = n.Load()
	write(t, filepath.Join(dir, "b.yaml"), flagA)
	deadline = time.Now().Add(5 * time.Second)
	for n.Load() == before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n.Load() == before {
		t.Fatal("the new directory is not watched")
	}
}

// TestFetchWaitsForFilesBeingWritten: with a quiet time, a file modified within it
// may be half written: Fetch reads it only once it has been quiet that long.
func TestFetchWaitsForFilesBeingWritten(t *testing.T) {
	const quiet = time.Second
	dir := t.TempDir()
	p := filepath.Join(dir, "flags.yaml")
	full := flagA + strings.Replace(flagA[len("flags:\n"):], "  a:", "  b:", 1)
	write(t, p, full)
	s, _ := New("git", Config{Path: p}, Options{Quiet: quiet})
	if r, err := s.Fetch(context.Background()); err != nil || len(r.Definitions) != 2 {
		t.Fatalf("first fetch: %v %+v", err, r)
	}
	// A writer that truncates, writes one flag (valid YAML on its own), then the rest.
	write(t, p, flagA)
	rest := make(chan error, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			_, err = f.WriteString(full[len(flagA):])
			err = errors.Join(err, f.Close())
		}
		rest <- err
	}()
	r, err := s.Fetch(context.Background())
	if err := <-rest; err != nil {
		t.Fatal(err)
	}
	if err != nil || len(r.Definitions) != 2 {
		t.Fatalf("fetch during the write = %+v, %v; want both flags", r, err)
	}
	// A file that never goes quiet within the fetch's deadline fails the fetch.
	write(t, p, flagA)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Fetch(ctx); err == nil || !strings.Contains(err.Error(), "still being written") {
		t.Fatalf("err = %v, want still being written", err)
	}
}
