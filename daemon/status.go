// Status: what /api/v1/status, readiness and the status page report.

package daemon

import (
	"sort"
	"time"

	"github.com/flagsync/flagsync/lifecycle"
)

// Ready tells whether a snapshot has been published (or was already held by an output
// and confirmed by a sync).
func (d *Daemon) Ready() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ready
}

// Snapshot returns the current snapshot bytes (nil before there is one).
func (d *Daemon) Snapshot() []byte {
	d.mu.Lock()
	cur := d.current
	d.mu.Unlock()
	if cur == nil || cur.set == nil {
		return nil
	}
	pub, err := cur.encoded()
	if err != nil {
		d.log.Error("cannot encode the current snapshot", "err", err)
		return nil
	}
	return pub.bytes
}

// FlagError is one per-flag problem in the status.
type FlagError struct {
	Flag    string `json:"flag,omitempty"`
	Path    string `json:"path"`
	Message string `json:"message"`
	Source  string `json:"source"` // the source name, "merge" (overlays) or "validate"
}

// SyncStatus describes the last sync.
type SyncStatus struct {
	At         time.Time `json:"at"`
	DurationMS float64   `json:"durationMs"`
	Result     string    `json:"result"`
	Forced     bool      `json:"forced,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// SourceStatus describes one source.
type SourceStatus struct {
	Name        string     `json:"name"`
	Type        string     `json:"type"`
	LastSuccess *time.Time `json:"lastSuccess,omitempty"`
	LastError   string     `json:"lastError,omitempty"`
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
	Definitions int        `json:"definitions"`
	Overlays    int        `json:"overlays"`
	Held        bool       `json:"held,omitempty"`
	APICalls    int64      `json:"apiCalls"` // remote API calls since the daemon started
}

// OutputStatus describes one output.
type OutputStatus struct {
	Name        string     `json:"name"`
	Target      string     `json:"target"`
	Revision    string     `json:"revision,omitempty"`   // what the output held when last checked or written
	Generation  int64      `json:"generation,omitempty"` // its generation
	UpToDate    bool       `json:"upToDate"`
	LastSuccess *time.Time `json:"lastSuccess,omitempty"`
	LastError   string     `json:"lastError,omitempty"`
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
}

// Status is the JSON document of /api/v1/status.
type Status struct {
	FlagSetID   string         `json:"flagSetId"`
	Ready       bool           `json:"ready"`
	Revision    string         `json:"revision,omitempty"`
	Generation  int64          `json:"generation,omitempty"`
	GeneratedAt *time.Time     `json:"generatedAt,omitempty"`
	Flags       int            `json:"flags"`
	LastSync    *SyncStatus    `json:"lastSync,omitempty"`
	Guard       string         `json:"guard,omitempty"`
	Sources     []SourceStatus `json:"sources"`
	Outputs     []OutputStatus `json:"outputs"`
	FlagErrors  []FlagError    `json:"flagErrors"`
	// Holds are the sources held by their removal guard; Rejected the values not
	// taken at the last publish (the flag kept the source's accepted value, or fell
	// back to lower precedence when there was none).
	Holds    []HoldStatus `json:"holds"`
	Rejected []rejection  `json:"rejected"`
	// Expiry lists the flags expiring soon, in their grace period, expired or with an
	// invalid expiresAt, with owner and source (docs/LIFECYCLE.md).
	Expiry []lifecycle.Finding `json:"expiry"`
}

// Status reports the daemon's state. It never contains source values or secrets.
func (d *Daemon) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	holds := append([]HoldStatus{}, d.holds...)
	st := Status{Holds: holds, Rejected: append([]rejection{}, d.rejections...), FlagSetID: d.cfg.FlagSetID, Ready: d.ready, FlagErrors: append([]FlagError{}, d.flagErrors...), Guard: d.guard,
		Expiry: append([]lifecycle.Finding{}, d.findings...)}
	if d.current != nil {
		st.Revision, st.Generation, st.Flags = d.current.revision, d.current.generation, len(d.current.keys)
		if !d.current.generatedAt.IsZero() {
			t := d.current.generatedAt
			st.GeneratedAt = &t
		}
	}
	if !d.lastSync.At.IsZero() {
		ls := d.lastSync
		st.LastSync = &ls
	}
	for _, s := range d.srcs {
		ss := SourceStatus{Name: s.cfg.Name, Type: s.cfg.Type, LastError: s.lastError, APICalls: s.apiCalls.Load()}
		if !s.lastSuccess.IsZero() {
			t := s.lastSuccess
			ss.LastSuccess = &t
		}
		if !s.lastErrorAt.IsZero() && s.lastError != "" {
			t := s.lastErrorAt
			ss.LastErrorAt = &t
		}
		if s.last != nil {
			ss.Definitions, ss.Overlays = len(s.last.Definitions), len(s.last.Overlays)
		}
		for _, h := range holds {
			ss.Held = ss.Held || h.Source == s.cfg.Name
		}
		st.Sources = append(st.Sources, ss)
	}
	for _, o := range d.outs {
		os := OutputStatus{Name: o.out.name(), Target: o.out.target(), Revision: o.revision, Generation: o.generation, LastError: o.lastError}
		os.UpToDate = d.current != nil && o.revision == d.current.revision
		if !o.lastSuccess.IsZero() {
			t := o.lastSuccess
			os.LastSuccess = &t
		}
		if !o.lastErrorAt.IsZero() && o.lastError != "" {
			t := o.lastErrorAt
			os.LastErrorAt = &t
		}
		st.Outputs = append(st.Outputs, os)
	}
	sort.SliceStable(st.FlagErrors, func(i, j int) bool { return st.FlagErrors[i].Path < st.FlagErrors[j].Path })
	return st
}
