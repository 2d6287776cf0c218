package flagset

import (
	"encoding/json"
	"errors"
	"time"
)

// STUBS: the flagset helper replaces every body in this file with the real implementation
// (and may move the functions to other files). Signatures are the contract other packages use.

var errStub = errors.New("flagset: stub")

// Set is a validated, compiled, immutable flag set. Safe for concurrent use.
type Set struct{}

// Parse decodes a JSON or YAML document with size and depth limits.
func Parse(data []byte) (*Document, error) { return nil, errStub }

// Validate returns every problem of the document (set level and per flag).
func (d *Document) Validate() Problems { return nil }

// ValidateFlag validates one flag given the document's $evaluators.
func ValidateFlag(key string, f *Flag, evaluators map[string]json.RawMessage) Problems { return nil }

// Compile validates and compiles d. Invalid flags are left out of the Set and reported
// in Problems; set-level problems are reported too. The Set is never nil.
func Compile(d *Document) (*Set, Problems) { return &Set{}, nil }

// Load is Parse followed by Compile.
func Load(data []byte) (*Set, Problems, error) { return nil, nil, errStub }

// Evaluate resolves a flag for a caller; ctx holds the caller's attributes incl. targetingKey.
func (s *Set) Evaluate(key string, typ Type, defaultValue any, ctx map[string]any) Result {
	return Result{}
}

// EvaluateAt is Evaluate with an explicit $flagd.timestamp (unix seconds).
func (s *Set) EvaluateAt(key string, typ Type, defaultValue any, ctx map[string]any, now int64) Result {
	return Result{}
}

// Keys returns the flag keys, sorted.
func (s *Set) Keys() []string { return nil }

// Len is the number of flags.
func (s *Set) Len() int { return 0 }

// Flag returns the definition of key as compiled (shared; do not mutate).
func (s *Set) Flag(key string) (*Flag, bool) { return nil, false }

// Document returns the document of the valid flags (shared; do not mutate).
func (s *Set) Document() *Document { return nil }

// Metadata returns the flag-set metadata (shared; do not mutate).
func (s *Set) Metadata() map[string]any { return nil }

// FlagSetID returns metadata.flagSetId or "".
func (s *Set) FlagSetID() string { return "" }

// Revision returns metadata.version if present, else the computed revision.
func (s *Set) Revision() string { return "" }

// Generation returns metadata["flagsync.generation"] or 0.
func (s *Set) Generation() int64 { return 0 }

// GeneratedAt returns metadata["flagsync.generatedAt"] parsed, if present.
func (s *Set) GeneratedAt() (time.Time, bool) { return time.Time{}, false }

// Diff lists the flag keys added, removed and changed (any field) from old to new, sorted.
// old may be nil.
func Diff(old, new *Set) (added, removed, changed []string) { return nil, nil, nil }

// Canonical is the deterministic JSON encoding of d (see docs/FORMAT.md).
func Canonical(d *Document) ([]byte, error) { return nil, errStub }

// Revision is the hex SHA-256 of the canonical encoding of d without volatile metadata
// ($schema, metadata.version and metadata keys prefixed "flagsync.").
func Revision(d *Document) (string, error) { return "", errStub }

// Murmur3 is MurmurHash3 x86 32-bit with seed 0.
func Murmur3(data []byte) uint32 { return 0 }
