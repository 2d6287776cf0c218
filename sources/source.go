// Package sources defines how flagsync reads flags from the places teams keep them.
// Each store (file, env, SSM, Consul) lives in a sub-package and implements Source.
package sources

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/flagsync/flagsync/flagset"
)

// Source is one configured place flags come from.
type Source interface {
	// Name is the configured name, used in logs, metrics, status and metadata.source.
	Name() string
	// Fetch reads everything the source holds now. An error means the whole source
	// failed this cycle (the daemon then keeps its last good Result); problems with
	// single flags go into Result.Problems instead.
	Fetch(ctx context.Context) (*Result, error)
}

// Watcher is implemented by sources that can tell when they changed.
type Watcher interface {
	// Watch blocks until ctx is done, calling changed (non-blocking) whenever the
	// source may hold new content. Errors are retried inside; Watch returns ctx.Err().
	Watch(ctx context.Context, changed func()) error
}

// Deleter is implemented by sources whose store can delete one flag's value (SSM,
// Consul): the cleanup's deleteFromSource. origin is the flag's Origin as the source
// read it; previous is the value before the deletion (for the audit log, so a
// deletion can be undone by hand). A deleter refuses (ErrNotDeletable) an origin that
// is not its own, or whose version no longer matches the store.
type Deleter interface {
	Delete(ctx context.Context, flagKey string, origin Origin) (previous []byte, err error)
}

// Getter is optionally implemented by a Deleter; dry runs use it to log the value that
// would be deleted.
type Getter interface {
	Get(ctx context.Context, flagKey string, origin Origin) ([]byte, error)
}

// ErrNotDeletable is returned (wrapped) for a flag whose value cannot be deleted from
// its store: a refusal by design, not a failure.
var ErrNotDeletable = errors.New("source not deletable")

// Result is what one fetch of one source produced.
type Result struct {
	// Definitions are full flag definitions by key.
	Definitions map[string]*flagset.Flag
	// Origins says where each definition was read (a file, a stored value). A
	// definition's metadata.source may say otherwise (a file may carry its own); this
	// is where this source found it.
	Origins map[string]Origin
	// Overlays change the state/default of a lower-precedence flag, or create a
	// static flag when nothing else defines the key.
	Overlays map[string]Overlay
	// Evaluators are shared targeting rules ($evaluators) by name.
	Evaluators map[string]json.RawMessage
	// Problems are per-flag errors: the flag was left out, the rest is good.
	Problems flagset.Problems
	// Secret holds the keys whose stored value is a secret (an SSM SecureString).
	// The value still goes into the snapshot (applications need it), but nothing
	// else the daemon says about the flag — problems, status, the status page, logs,
	// notifications — may repeat what was derived from it. See MarkSecret.
	Secret map[string]bool
}

// MarkSecret records that key's stored value is a secret (see Result.Secret).
func (r *Result) MarkSecret(key string) {
	if r.Secret == nil {
		r.Secret = map[string]bool{}
	}
	r.Secret[key] = true
}

// Overlay is a bare value or a small patch for one flag (see docs/FORMAT.md).
type Overlay struct {
	// Value is set for a bare value (bool, string or float64).
	Value any
	// HasValue tells Value was given (Value may legitimately be false).
	HasValue bool
	// State, when set, replaces the flag's state.
	State *flagset.State
	// DefaultVariant, when set, replaces the flag's defaultVariant.
	DefaultVariant *string
	// Origin is where the overlay was read.
	Origin Origin
}
