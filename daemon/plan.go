package daemon

import (
	"encoding/json"
	"maps"
	"reflect"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/sources"
)

// accepted is what one source contributed to the last snapshot the daemon accepted
// (published, or found unchanged): per flag key a definition or an overlay. A flag
// whose new value from the source is rejected keeps this contribution, and the
// guards measure removals against it. The maps are shared with the source results
// they came from and never mutated.
type accepted struct {
	defs    map[string]*flagset.Flag
	origins map[string]sources.Origin // where each definition was read
	ovs     map[string]sources.Overlay
	secret  map[string]bool // keys whose accepted value came from a secret
}

func (a accepted) has(key string) bool {
	if _, ok := a.defs[key]; ok {
		return true
	}
	_, ok := a.ovs[key]
	return ok
}

func (a accepted) len() int { return len(a.defs) + len(a.ovs) }

// each calls fn for every key.
func (a accepted) each(fn func(key string)) {
	for k := range a.defs {
		fn(k)
	}
	for k := range a.ovs {
		fn(k)
	}
}

// sourcePlan is what one source contributes to the snapshot being built: its latest
// result, with rejected values replaced by the source's accepted contribution and,
// while the source is held, its removals withheld. Maps are copied on first change,
// so an untouched plan shares the result's maps.
type sourcePlan struct {
	s          *sourceState
	defs       map[string]*flagset.Flag
	origins    map[string]sources.Origin // where each definition was read
	ovs        map[string]sources.Overlay
	evaluators map[string]json.RawMessage
	secret     map[string]bool // keys the source marked secret (sources.Result.Secret)
	copied     bool

	rejected map[string]rejection // by flag key: values not taken this time
	removed  []string             // accepted keys the source no longer has (before any hold)
	withheld []string             // removals kept because the source is held
}

// newPlan starts the plan of s from its latest result: flags whose value the source
// could not read (a per-flag problem) keep the accepted contribution, if any.
func newPlan(s *sourceState, res *sources.Result) *sourcePlan {
	p := &sourcePlan{s: s, defs: res.Definitions, origins: res.Origins, ovs: res.Overlays, evaluators: res.Evaluators, secret: res.Secret}
	secret := secretFlags(res.Secret)
	for _, pr := range res.Problems {
		if pr.Flag == "" || p.has(pr.Flag) {
			continue
		}
		secret.redactProblem(&pr)
		p.reject(pr.Flag, pr.Message)
	}
	s.accepted.each(func(k string) {
		if !p.has(k) {
			p.removed = append(p.removed, k)
		}
	})
	return p
}

func (p *sourcePlan) has(key string) bool {
	if _, ok := p.defs[key]; ok {
		return true
	}
	_, ok := p.ovs[key]
	return ok
}

func (p *sourcePlan) keys() int { return len(p.defs) + len(p.ovs) }

func (p *sourcePlan) own() {
	if p.copied {
		return
	}
	p.defs, p.ovs, p.copied = maps.Clone(p.defs), maps.Clone(p.ovs), true
	p.origins = maps.Clone(p.origins)
	if p.defs == nil {
		p.defs = map[string]*flagset.Flag{}
	}
	if p.origins == nil {
		p.origins = map[string]sources.Origin{}
	}
	if p.ovs == nil {
		p.ovs = map[string]sources.Overlay{}
	}
}

// restore puts the accepted contribution for key back in place of whatever the plan
// has, or drops the key when the source has none accepted (the flag then falls back
// to lower precedence). It tells whether an accepted contribution was kept.
func (p *sourcePlan) restore(key string) bool {
	p.own()
	delete(p.defs, key)
	delete(p.origins, key)
	delete(p.ovs, key)
	if def, ok := p.s.accepted.defs[key]; ok {
		p.defs[key] = def
		if o, ok := p.s.accepted.origins[key]; ok {
			p.origins[key] = o
		}
		return true
	}
	if ov, ok := p.s.accepted.ovs[key]; ok {
		p.ovs[key] = ov
		return true
	}
	return false
}

// reject records that the source's value for key is not taken (message says why and
// where it came from) and restores the accepted contribution.
func (p *sourcePlan) reject(key, message string) {
	kept := p.restore(key)
	if p.rejected == nil {
		p.rejected = map[string]rejection{}
	}
	if _, dup := p.rejected[key]; !dup {
		p.rejected[key] = rejection{Source: p.s.cfg.Name, Flag: key, Message: message, Kept: kept}
	}
}

// rejectOverlay records that the source's overlay for key did not fit. kept tells
// whether merge applied the source's accepted overlay instead; the plan then holds
// that one, so it stays the accepted contribution.
func (p *sourcePlan) rejectOverlay(key, message string, kept bool) {
	p.restore(key)
	if p.rejected == nil {
		p.rejected = map[string]rejection{}
	}
	if _, dup := p.rejected[key]; !dup {
		p.rejected[key] = rejection{Source: p.s.cfg.Name, Flag: key, Message: message, Kept: kept}
	}
}

// origin says where the plan's contribution for key came from.
func (p *sourcePlan) origin(key string) string {
	if _, ok := p.defs[key]; ok {
		if o := p.origins[key]; !o.IsZero() {
			return o.String()
		}
	}
	if ov, ok := p.ovs[key]; ok && !ov.Origin.IsZero() {
		return ov.Origin.String()
	}
	return "source " + p.s.cfg.Name
}

// changed tells whether the plan's contribution for key differs from the accepted
// one (a new value, or a new key).
func (p *sourcePlan) changed(key string) bool {
	if def, ok := p.defs[key]; ok {
		acc, had := p.s.accepted.defs[key]
		return !had || (acc != def && !reflect.DeepEqual(acc, def))
	}
	if ov, ok := p.ovs[key]; ok {
		acc, had := p.s.accepted.ovs[key]
		return !had || !sameOverlay(acc, ov)
	}
	return false
}

// withhold keeps the accepted contribution of every removal (the source is held).
func (p *sourcePlan) withhold() {
	for _, k := range p.removed {
		if !p.has(k) && p.restore(k) {
			p.withheld = append(p.withheld, k)
		}
	}
}

// result is the plan as a source result for merge.
func (p *sourcePlan) result() sourceResult {
	return sourceResult{name: p.s.cfg.Name, res: &sources.Result{Definitions: p.defs, Origins: p.origins, Overlays: p.ovs, Evaluators: p.evaluators, Secret: p.secrets()},
		fallback: p.s.accepted.ovs}
}

// secrets is the keys the plan's values may derive from a secret: those the source
// marks now and those whose accepted (possibly kept) value was marked.
func (p *sourcePlan) secrets() map[string]bool {
	if len(p.s.accepted.secret) == 0 {
		return p.secret
	}
	out := maps.Clone(p.s.accepted.secret)
	maps.Copy(out, p.secret)
	return out
}

// accept makes the plan the source's accepted contribution.
func (p *sourcePlan) accept() {
	p.s.accepted = accepted{defs: p.defs, origins: p.origins, ovs: p.ovs, secret: p.secrets()}
}

func sameOverlay(a, b sources.Overlay) bool {
	if a.HasValue != b.HasValue || a.Value != b.Value {
		return false
	}
	if (a.State == nil) != (b.State == nil) || (a.State != nil && *a.State != *b.State) {
		return false
	}
	return (a.DefaultVariant == nil) == (b.DefaultVariant == nil) && (a.DefaultVariant == nil || *a.DefaultVariant == *b.DefaultVariant)
}

// rejection is one flag whose value from a source was not taken: it did not parse,
// did not fit the flag it overlays, or made the flag invalid. Kept tells whether the
// flag kept the source's accepted contribution (else it fell back to lower
// precedence). The message names where the value came from and never quotes it.
type rejection struct {
	Source  string `json:"source"`
	Flag    string `json:"flag"`
	Message string `json:"message"`
	Kept    bool   `json:"kept"`
}
