// Package flagset is the flagsync snapshot format: parse, validate, compile and
// evaluate flag sets. It is pure (no I/O) so every other part of flagsync, the
// daemon, the OpenFeature provider and the CLI, can depend on it.
package flagset

import (
	"encoding/json"
	"unsafe"
)

// State is a flag's on/off switch. A DISABLED flag always yields the caller's default.
type State string

const (
	Enabled  State = "ENABLED"
	Disabled State = "DISABLED"
)

// Reason tells why an evaluation returned what it did (OpenFeature reasons).
type Reason string

const (
	ReasonStatic         Reason = "STATIC"
	ReasonTargetingMatch Reason = "TARGETING_MATCH"
	ReasonDefault        Reason = "DEFAULT"
	ReasonDisabled       Reason = "DISABLED"
	ReasonError          Reason = "ERROR"
)

// ErrorCode is the OpenFeature error code of a failed evaluation; "" means no error.
type ErrorCode string

const (
	CodeNone         ErrorCode = ""
	CodeFlagNotFound ErrorCode = "FLAG_NOT_FOUND"
	CodeParseError   ErrorCode = "PARSE_ERROR"
	CodeTypeMismatch ErrorCode = "TYPE_MISMATCH"
	CodeGeneral      ErrorCode = "GENERAL"
)

// Type is the value type a caller asks for.
type Type uint8

const (
	TypeBoolean Type = iota + 1
	TypeString
	TypeInteger
	TypeFloat
	TypeObject
)

// Well-known metadata keys.
const (
	MetaFlagSetID   = "flagSetId"            // flag-set level
	MetaVersion     = "version"              // flag-set level: the snapshot revision
	MetaGeneratedAt = "flagsync.generatedAt" // flag-set level: RFC 3339 time of the sync
	MetaGeneration  = "flagsync.generation"  // flag-set level: monotonic publish counter
	MetaOwner       = "owner"                // flag level
	MetaDescription = "description"          // flag level
	MetaExpiresAt   = "expiresAt"            // flag level: RFC 3339
	MetaSource      = "source"               // flag level: where the daemon found it
)

// Document is the decoded (not yet validated) form of a snapshot or an input file.
// Numbers decode as float64, like encoding/json.
type Document struct {
	Schema     string                     `json:"$schema,omitempty"`
	Flags      map[string]*Flag           `json:"flags"`
	Evaluators map[string]json.RawMessage `json:"$evaluators,omitempty"`
	Metadata   map[string]any             `json:"metadata,omitempty"`

	problems Problems // decoding problems found by Parse (wrong types, unknown fields)
	// sharedVariants holds the Variants maps JSON Parse gave more than one flag;
	// nil when unknown (YAML, a document built in Go), and then Compile takes
	// any map to be shared.
	sharedVariants map[unsafe.Pointer]struct{}
}

// Flag is one flag definition as written in a document.
type Flag struct {
	State          State           `json:"state"`
	Variants       map[string]any  `json:"variants"`
	DefaultVariant *string         `json:"defaultVariant"`
	Targeting      json.RawMessage `json:"targeting,omitempty"`
	Metadata       map[string]any  `json:"metadata,omitempty"`

	parsed *parsedFlag // what Parse knew beyond the fields above; nil: a flag built in Go
	// text identifies the JSON text the flag was decoded from (see Reload); zero
	// when it was not decoded from JSON text, or had decoding problems.
	text textSum
}

// Problem is one validation finding. Path is the field path, e.g.
// "flags.new_dashboard.defaultVariant"; Flag is the flag key ("" for set-level problems).
type Problem struct {
	Flag    string
	Path    string
	Message string
}

func (p Problem) Error() string { return p.Path + ": " + p.Message }

// Problems is every finding of a validation; it is an error when non-empty.
type Problems []Problem

// Result is one evaluation's outcome. Metadata is shared and must not be mutated.
type Result struct {
	Value   any
	Variant string // the selected variant's name; see HasVariant
	// HasVariant tells whether a variant was selected: a variant may be named "",
	// so Variant == "" alone does not say there was none.
	HasVariant   bool
	Reason       Reason
	ErrorCode    ErrorCode
	ErrorMessage string
	Metadata     map[string]any
}
