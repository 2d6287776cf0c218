package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/flagset"
)

// flagsOfSize is a valid YAML flag document of exactly n bytes (n > 100).
func flagsOfSize(n int) []byte {
	head := "flags:\n  a:\n    state: ENABLED\n    variants: {\"on\": true, \"off\": false}\n    defaultVariant: \"off\"\n"
	return []byte(head + "#" + strings.Repeat("x", n-len(head)-2) + "\n")
}

func TestInputLimit(t *testing.T) {
	dir := t.TempDir()
	single := filepath.Join(dir, "one.yaml")
	if err := os.WriteFile(single, flagsOfSize(DefaultMaxBytes+1), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New("git", Config{Path: single}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Fetch(context.Background())
	if !errors.Is(err, errTooLarge) || !strings.Contains(err.Error(), single) || !strings.Contains(err.Error(), "maxBytes 8388608") {
		t.Fatalf("a file one byte over the default limit: %v", err)
	}
	// Exactly at the limit is accepted.
	if err := os.WriteFile(single, flagsOfSize(5000), 0o644); err != nil {
		t.Fatal(err)
	}
	s, _ = New("git", Config{Path: single, MaxBytes: 5000}, Options{})
	if res, err := s.Fetch(context.Background()); err != nil || len(res.Definitions) != 1 {
		t.Fatalf("a file at the limit: %v", err)
	}

	// A directory counts all its files together.
	tree := filepath.Join(dir, "tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"a.yaml", "b.yaml"} {
		doc := strings.Replace(string(flagsOfSize(599)), "  a:", fmt.Sprintf("  f%d:", i), 1)
		if err := os.WriteFile(filepath.Join(tree, name), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err = New("git", Config{Path: tree, MaxBytes: 1000}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fetch(context.Background()); !errors.Is(err, errTooLarge) || !strings.Contains(err.Error(), "b.yaml") {
		t.Fatalf("two files of 600 bytes with maxBytes 1000: %v", err)
	}
	s, _ = New("git", Config{Path: tree, MaxBytes: 1200}, Options{})
	if res, err := s.Fetch(context.Background()); err != nil || len(res.Definitions) != 2 {
		t.Fatalf("two files of 600 bytes with maxBytes 1200: %v", err)
	}

	for _, bad := range []int64{-1, flagset.MaxDocumentSize + 1} {
		if _, err := New("git", Config{Path: tree, MaxBytes: bad}, Options{}); err == nil || !strings.Contains(err.Error(), "maxBytes") {
			t.Errorf("maxBytes %d: %v", bad, err)
		}
	}
}
