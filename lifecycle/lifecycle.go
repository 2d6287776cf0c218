package lifecycle

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/flagsync/flagsync/flagset"
)

// Status is where a flag stands relative to its expiry.
type Status string

const (
	// StatusOK: expiresAt is further away than warnBefore.
	StatusOK Status = "ok"
	// StatusExpiring: expiresAt is within warnBefore from now.
	StatusExpiring Status = "expiring"
	// StatusGrace: expiresAt has passed but the grace period has not; no action yet.
	StatusGrace Status = "grace"
	// StatusExpired: expiresAt + grace has passed; the configured action applies.
	StatusExpired Status = "expired"
	// StatusInvalid: metadata.expiresAt is present but not an RFC 3339 time. Reported,
	// never acted on: a typo must not remove a flag.
	StatusInvalid Status = "invalid"
)

// Finding is the expiry status of one flag that has metadata.expiresAt.
type Finding struct {
	Flag        string    `json:"flag"`
	Status      Status    `json:"status"`
	ExpiresAt   time.Time `json:"expiresAt,omitzero"`
	Owner       string    `json:"owner,omitempty"`
	Description string    `json:"description,omitempty"`
	// Source is metadata.source, for display: e.g. "file:flags.yaml",
	// "ssm:/flags/prod/x@3", "consul:flags/prod/x@812". Nothing acts on it: the
	// daemon's cleanup uses the merge's typed provenance (sources.Provenance).
	Source string `json:"source,omitempty"`
	// Remaining is expiresAt − now: negative once expired.
	Remaining time.Duration `json:"-"`
	// Problem explains StatusInvalid.
	Problem string `json:"problem,omitempty"`
}

// Classify returns one Finding per flag of doc that has metadata.expiresAt, sorted by
// flag key. Flags without expiresAt are not listed (lint reports the missing field).
func Classify(doc *flagset.Document, now time.Time, warnBefore, grace time.Duration) []Finding {
	if doc == nil {
		return nil
	}
	keys := make([]string, 0, len(doc.Flags))
	for k := range doc.Flags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Finding
	for _, key := range keys {
		f := doc.Flags[key]
		if f == nil {
			continue
		}
		raw, ok := f.Metadata[flagset.MetaExpiresAt]
		if !ok {
			continue
		}
		fd := Finding{
			Flag:        key,
			Owner:       metaString(f.Metadata, flagset.MetaOwner),
			Description: metaString(f.Metadata, flagset.MetaDescription),
			Source:      metaString(f.Metadata, flagset.MetaSource),
		}
		exp, err := ParseExpiry(raw)
		if err != nil {
			fd.Status = StatusInvalid
			fd.Problem = fmt.Sprintf("flags.%s.metadata.expiresAt: %v", key, err)
			out = append(out, fd)
			continue
		}
		fd.ExpiresAt = exp
		fd.Remaining = exp.Sub(now)
		switch {
		case !now.Before(exp.Add(grace)):
			fd.Status = StatusExpired
		case !now.Before(exp):
			fd.Status = StatusGrace
		case exp.Sub(now) <= warnBefore:
			fd.Status = StatusExpiring
		default:
			fd.Status = StatusOK
		}
		out = append(out, fd)
	}
	return out
}

// ParseExpiry reads a metadata.expiresAt value: an RFC 3339 time ("2026-03-01T00:00:00Z"),
// the same rule flagset validation applies.
func ParseExpiry(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("must be an RFC 3339 time string, got %T", v)
	}
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (e.g. 2026-03-01T00:00:00Z)", s)
}

func metaString(m map[string]any, key string) string {
	if s, ok := m[key].(string); ok {
		return s
	}
	return ""
}

// Action is what Apply did (or, for report/dry runs, would do) to one expired flag.
type Action struct {
	Flag      string     `json:"flag"`
	Kind      ActionKind `json:"action"`
	ExpiresAt time.Time  `json:"expiresAt"`
	Owner     string     `json:"owner,omitempty"`
	Source    string     `json:"source,omitempty"`
	// Skipped tells why a deletion was not done (dry run, file source, no deleter, error).
	Skipped string `json:"skipped,omitempty"`
	// Previous is the deleted value, as returned by the store (deleteFromSource only).
	Previous []byte `json:"-"`
}

// Apply returns a copy of doc where every StatusExpired finding is handled by action:
// disable → the flag is published with state DISABLED; remove and deleteFromSource → it
// is left out; report → unchanged. doc is never modified: the result has its own Flags
// map and a copied Flag for each disabled flag (other flags are shared, read-only).
// The Actions list every expired flag that is still in doc, sorted by key.
func Apply(doc *flagset.Document, findings []Finding, action ActionKind) (*flagset.Document, []Action) {
	if doc == nil {
		return nil, nil
	}
	out := *doc
	out.Flags = make(map[string]*flagset.Flag, len(doc.Flags))
	for k, f := range doc.Flags {
		out.Flags[k] = f
	}
	var acts []Action
	for _, fd := range findings {
		if fd.Status != StatusExpired {
			continue
		}
		f, ok := out.Flags[fd.Flag]
		if !ok || f == nil {
			continue
		}
		acts = append(acts, Action{Flag: fd.Flag, Kind: action, ExpiresAt: fd.ExpiresAt, Owner: fd.Owner, Source: fd.Source})
		switch action {
		case ActionDisable:
			if f.State != flagset.Disabled {
				cp := *f
				cp.State = flagset.Disabled
				out.Flags[fd.Flag] = &cp
			}
		case ActionRemove, ActionDeleteFromSource:
			delete(out.Flags, fd.Flag)
		}
	}
	sort.Slice(acts, func(i, j int) bool { return acts[i].Flag < acts[j].Flag })
	return &out, acts
}

// Expired returns the findings with StatusExpired.
func Expired(findings []Finding) []Finding {
	var out []Finding
	for _, f := range findings {
		if f.Status == StatusExpired {
			out = append(out, f)
		}
	}
	return out
}
