package sources

import (
	"strconv"
	"strings"
)

// Origin is where a source read one flag's definition or overlay. Sources fill it in
// as they read; the merge carries it per flag (Provenance) to lint findings, the
// cleanup's deleters and messages, so nothing parses a formatted origin back.
type Origin struct {
	// Scheme is the kind of store: "file", "env", "ssm", "consul".
	Scheme string
	// Location is the file path (as configured), variable name, SSM parameter name or
	// Consul key.
	Location string
	// Version is the store's version of the value when it was read (SSM parameter
	// version, Consul ModifyIndex); 0 when the store has none. A deleter only deletes
	// while the stored version still equals it.
	Version uint64
}

// String is the display and metadata.source form: "scheme:location", followed by
// "@version" when there is one ("ssm:/flags/prod/x@3", "file:flags.yaml").
func (o Origin) String() string {
	if o.Scheme == "" && o.Location == "" {
		return ""
	}
	s := o.Scheme + ":" + o.Location
	if o.Version != 0 {
		s += "@" + strconv.FormatUint(o.Version, 10)
	}
	return s
}

// IsZero tells whether o names nothing.
func (o Origin) IsZero() bool { return o == Origin{} }

// Contribution is one source's part in a merged flag.
type Contribution struct {
	// Source is the configured name of the source.
	Source string
	Origin Origin
	// Definition tells the contribution is a full definition (from a file or a stored
	// definition); otherwise it is an overlay (a bare value or a patch).
	Definition bool
}

// Provenance is what shaped one merged flag, in the order it was applied: the
// definition it is built on (when a source defined it), then each overlay.
type Provenance []Contribution

// String joins the origins with "+", the metadata.source form of an overlaid flag
// (docs/FORMAT.md), e.g. "file:flags.yaml+env:FLAGSYNC_FLAG_BETA_MODE".
func (p Provenance) String() string {
	parts := make([]string, 0, len(p))
	for _, c := range p {
		if s := c.Origin.String(); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "+")
}

// Definition returns the contribution that defined the flag; false for a flag made
// from bare values only.
func (p Provenance) Definition() (Contribution, bool) {
	for _, c := range p {
		if c.Definition {
			return c, true
		}
	}
	return Contribution{}, false
}

// Single returns the one contribution of a flag that a single source shaped; false
// when several did (such a flag belongs to no one store).
func (p Provenance) Single() (Contribution, bool) {
	if len(p) != 1 {
		return Contribution{}, false
	}
	return p[0], true
}
