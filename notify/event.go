// Package notify tells people and systems what flagsync changed: webhooks (generic JSON
// or Slack-compatible, optionally HMAC-signed) and local commands (e.g. a smoke test)
// receive published flag changes, guard trips and cleanup actions. Delivery never
// blocks or fails a sync: Notify only queues, each sink has its own bounded queue and
// worker, and failures become metrics and log lines.
package notify

import (
	"sort"
	"time"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/lifecycle"
)

// Kind is the kind of one change; filters select by it.
type Kind string

const (
	KindAdded   Kind = "added"   // a flag appeared in the published snapshot
	KindRemoved Kind = "removed" // a flag disappeared from it
	KindChanged Kind = "changed" // a flag's definition changed (any field)
	KindGuard   Kind = "guard"   // a guard stopped a publish
	KindCleanup Kind = "cleanup" // the lifecycle cleanup acted on an expired flag
	// KindExpiry: a sync saw a flag's expiry status for the first time (expiring soon,
	// in its grace period, expired, or an invalid expiresAt); Detail says which.
	KindExpiry Kind = "expiry"
	// KindRejected: a source's value for a flag was rejected (the flag kept its last
	// accepted contribution), or such a rejection cleared (Detail "cleared").
	KindRejected Kind = "rejected"
)

// Type is the kind of event.
type Type string

const (
	TypePublish Type = "publish"
	TypeGuard   Type = "guard"
	TypeCleanup Type = "cleanup"
	// TypeExpiry: flags whose expiry status a sync saw for the first time (at start or
	// at any sync, not only at the cleanup tick). Its changes have kind expiry.
	TypeExpiry Type = "expiry"
	// TypeGuardRelease: a held source was released (back within bounds, or by an
	// operator); its changes publish again. Its changes have kind guard.
	TypeGuardRelease Type = "guardRelease"
	// TypeRejected: a value was rejected; TypeRejectionCleared: it is accepted again
	// (or gone). Their changes have kind rejected.
	TypeRejected         Type = "rejected"
	TypeRejectionCleared Type = "rejectionCleared"
)

// Event is one thing that happened. Its JSON form is the generic webhook payload and
// the exec stdin (see docs/LIFECYCLE.md).
type Event struct {
	Type             Type      `json:"type"`
	Time             time.Time `json:"time"`
	FlagSetID        string    `json:"flagSetId,omitempty"`
	Environment      string    `json:"environment,omitempty"`
	Revision         string    `json:"revision,omitempty"`
	PreviousRevision string    `json:"previousRevision,omitempty"`
	Generation       int64     `json:"generation,omitempty"`
	// Message is a human summary (guard trips: why the publish was stopped).
	Message string   `json:"message,omitempty"`
	Changes []Change `json:"changes"`
}

// Change is what happened to one flag.
type Change struct {
	Flag string `json:"flag"`
	Kind Kind   `json:"kind"`
	// Owner and Source are metadata.owner/metadata.source (new form, else old).
	Owner  string `json:"owner,omitempty"`
	Source string `json:"source,omitempty"`
	Old    *State `json:"old,omitempty"`
	New    *State `json:"new,omitempty"`
	// Action is the cleanup action (kind cleanup only).
	Action lifecycle.ActionKind `json:"action,omitempty"`
	// Detail is free text: the cleanup's skip reason, the guard's finding, ...
	Detail string `json:"detail,omitempty"`
}

// State is the part of a flag people care about in a change message.
type State struct {
	State          flagset.State `json:"state"`
	DefaultVariant *string       `json:"defaultVariant"`
	DefaultValue   any           `json:"defaultValue,omitempty"`
	Owner          string        `json:"owner,omitempty"`
	Source         string        `json:"source,omitempty"`
}

func stateOf(f *flagset.Flag) *State {
	if f == nil {
		return nil
	}
	s := &State{State: f.State, DefaultVariant: f.DefaultVariant}
	if f.DefaultVariant != nil {
		s.DefaultValue = f.Variants[*f.DefaultVariant]
	}
	s.Owner, _ = f.Metadata[flagset.MetaOwner].(string)
	s.Source, _ = f.Metadata[flagset.MetaSource].(string)
	return s
}

// PublishEvent describes the publish of next after prev (prev is nil on the first
// publish). It has no changes when the flags are the same.
func PublishEvent(prev, next *flagset.Set, now time.Time) Event {
	ev := Event{Type: TypePublish, Time: now.UTC(), Changes: []Change{}}
	if next != nil {
		ev.FlagSetID = next.FlagSetID()
		ev.Revision = next.Revision()
		ev.Generation = next.Generation()
	}
	if prev != nil {
		ev.PreviousRevision = prev.Revision()
	}
	added, removed, changed := flagset.Diff(prev, next)
	flagOf := func(s *flagset.Set, key string) *flagset.Flag {
		if s == nil {
			return nil
		}
		f, _ := s.Flag(key)
		return f
	}
	for _, k := range added {
		ev.Changes = append(ev.Changes, Change{Flag: k, Kind: KindAdded, New: stateOf(flagOf(next, k))})
	}
	for _, k := range removed {
		ev.Changes = append(ev.Changes, Change{Flag: k, Kind: KindRemoved, Old: stateOf(flagOf(prev, k))})
	}
	for _, k := range changed {
		ev.Changes = append(ev.Changes, Change{Flag: k, Kind: KindChanged, Old: stateOf(flagOf(prev, k)), New: stateOf(flagOf(next, k))})
	}
	for i := range ev.Changes {
		c := &ev.Changes[i]
		for _, s := range []*State{c.New, c.Old} {
			if s != nil && c.Owner == "" && c.Source == "" {
				c.Owner, c.Source = s.Owner, s.Source
			}
		}
	}
	sortChanges(ev.Changes)
	return ev
}

// GuardEvent describes a guard that stopped a publish. flags are the flags the guard
// names, if any (e.g. the flags a too-large removal would have dropped).
func GuardEvent(flagSetID, message string, flags []string, now time.Time) Event {
	ev := Event{Type: TypeGuard, Time: now.UTC(), FlagSetID: flagSetID, Message: message, Changes: []Change{}}
	for _, k := range flags {
		ev.Changes = append(ev.Changes, Change{Flag: k, Kind: KindGuard})
	}
	sortChanges(ev.Changes)
	return ev
}

// GuardReleaseEvent describes the end of a hold: message says why (back within
// bounds, operator release), flags are the withheld flags it lets go of.
func GuardReleaseEvent(flagSetID, message string, flags []string, now time.Time) Event {
	ev := GuardEvent(flagSetID, message, flags, now)
	ev.Type = TypeGuardRelease
	return ev
}

// RejectionEvent describes one rejected value (cleared false) or its clearing. source
// is where the value came from (e.g. consul:flags/prod/beta@42), detail what is wrong
// (never the value itself).
func RejectionEvent(flagSetID, flag, source, detail string, cleared bool, now time.Time) Event {
	ev := Event{Type: TypeRejected, Time: now.UTC(), FlagSetID: flagSetID, Message: detail,
		Changes: []Change{{Flag: flag, Kind: KindRejected, Source: source, Detail: detail}}}
	if cleared {
		ev.Type = TypeRejectionCleared
		ev.Changes[0].Detail = "cleared"
	}
	return ev
}

// CleanupEvent describes the actions of a lifecycle cleanup run (lifecycle.Apply and
// lifecycle.Cleanup results).
func CleanupEvent(flagSetID string, actions []lifecycle.Action, now time.Time) Event {
	ev := Event{Type: TypeCleanup, Time: now.UTC(), FlagSetID: flagSetID, Changes: []Change{}}
	for _, a := range actions {
		ev.Changes = append(ev.Changes, Change{
			Flag: a.Flag, Kind: KindCleanup, Action: a.Kind, Detail: a.Skipped,
			Owner: a.Owner, Source: a.Source,
		})
	}
	sortChanges(ev.Changes)
	return ev
}

// ExpiryEvent announces expiry findings first seen at a sync. action is what the
// environment's cleanup.action does to an expired flag (set on expired changes only).
func ExpiryEvent(flagSetID string, findings []lifecycle.Finding, action lifecycle.ActionKind, now time.Time) Event {
	ev := Event{Type: TypeExpiry, Time: now.UTC(), FlagSetID: flagSetID, Changes: []Change{}}
	for _, f := range findings {
		c := Change{Flag: f.Flag, Kind: KindExpiry, Owner: f.Owner, Source: f.Source, Detail: ExpiryDetail(f)}
		if f.Status == lifecycle.StatusExpired {
			c.Action = action
		}
		ev.Changes = append(ev.Changes, c)
	}
	sortChanges(ev.Changes)
	return ev
}

// ExpiryDetail describes a finding in a few words: "expired on 2026-05-01T00:00:00Z".
func ExpiryDetail(f lifecycle.Finding) string {
	at := f.ExpiresAt.UTC().Format(time.RFC3339)
	switch f.Status {
	case lifecycle.StatusExpired:
		return "expired on " + at
	case lifecycle.StatusGrace:
		return "expired on " + at + ", in its grace period"
	case lifecycle.StatusExpiring:
		return "expires on " + at
	case lifecycle.StatusInvalid:
		return "invalid expiresAt: " + f.Problem
	}
	return string(f.Status)
}

func sortChanges(c []Change) {
	sort.SliceStable(c, func(i, j int) bool { return c[i].Flag < c[j].Flag })
}

// Redacted stands in for a value derived from a secret in an event.
const Redacted = "<redacted: secret>"

// RedactSecrets removes from ev what was derived from a secret: for every change whose
// flag secret reports (e.g. its value is an SSM SecureString), the default variant
// (a variant name may be the value itself) and the default value of both states. The
// snapshot carries secrets to applications; webhooks, chat channels and commands must
// not.
func (ev *Event) RedactSecrets(secret func(flag string) bool) {
	for i := range ev.Changes {
		c := &ev.Changes[i]
		if !secret(c.Flag) {
			continue
		}
		for _, s := range []*State{c.Old, c.New} {
			if s == nil {
				continue
			}
			if s.DefaultVariant != nil {
				r := Redacted
				s.DefaultVariant = &r
			}
			if s.DefaultValue != nil {
				s.DefaultValue = Redacted
			}
		}
	}
}
