package daemon

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flagsync/flagsync/notify"
)

// guardState is the removal guard of one source (or, in Daemon.whole, of the whole
// set). The baseline it measures against is the accepted keys plus every key whose
// removal was published within guards.baselineWindow, so deleting keys one at a time
// adds up instead of each small step passing against the step before.
type guardState struct {
	recent map[string]time.Time // published removals within the window, by key

	// held is non-nil while the source is held: its removals are withheld (the
	// flags keep their accepted contribution) until every withheld key is back or
	// an operator releases the source.
	held      map[string]bool
	heldSince time.Time
	reason    string
	// release is an operator release waiting for the next publish: that publish
	// takes the source's removals and resets its baseline.
	release bool
}

// baselineCheck measures how many keys of the baseline (the accepted keys, given by
// each and inAccepted, plus the recent removals) present does not have.
func (g *guardState) baselineCheck(each func(func(string)), inAccepted, present func(string) bool, now time.Time, window time.Duration) (removed, base int) {
	each(func(k string) {
		base++
		if !present(k) {
			removed++
		}
	})
	for k, at := range g.recent {
		if now.Sub(at) > window || inAccepted(k) {
			continue
		}
		base++
		if !present(k) {
			removed++
		}
	}
	return removed, base
}

// trips tells whether removing removed of base keys (leaving left) is more than the
// guards allow, and why.
func (d *Daemon) trips(what string, removed, base, left int) (string, bool) {
	if base == 0 || removed == 0 {
		return "", false
	}
	if left == 0 && !d.cfg.Guards.AllowEmpty {
		return fmt.Sprintf("%s would be empty and had %d flags (guards.allowEmpty is false)", what, base), true
	}
	frac := float64(removed) / float64(base)
	if frac > d.cfg.Guards.RemovedFraction() {
		return fmt.Sprintf("%s removes %d of %d flags (%.0f%%) within guards.baselineWindow %s, more than guards.maxRemovedFraction %v",
			what, removed, base, frac*100, d.cfg.Guards.Window(), d.cfg.Guards.RemovedFraction()), true
	}
	return "", false
}

// recordRemovals updates a baseline after a publish: the keys in gone were removed
// at now; keys present again and entries older than the window go.
// reset starts the baseline over (operator release, forced sync).
func (g *guardState) recordRemovals(gone []string, present func(string) bool, now time.Time, window time.Duration, reset bool) {
	if reset {
		g.recent = nil
		return
	}
	for k, at := range g.recent {
		if now.Sub(at) > window || present(k) {
			delete(g.recent, k)
		}
	}
	if len(gone) > 0 && g.recent == nil {
		g.recent = map[string]time.Time{}
	}
	for _, k := range gone {
		g.recent[k] = now
	}
}

// guardSource applies the source guard to plan p: a held source withholds its
// removals (and is released once every withheld key is back); a source whose
// removals exceed the guard becomes held. It returns the error to report while the
// source is held.
func (d *Daemon) guardSource(p *sourcePlan, now time.Time) error {
	g := &p.s.guard
	name := p.s.cfg.Name
	if g.release {
		if g.held != nil {
			d.endHold(p.s, "released by an operator", now)
		}
		return nil
	}
	if g.held != nil {
		// A withheld flag that is back is no longer withheld; the hold ends when
		// none is left (a partial restore keeps the others withheld).
		for k := range g.held {
			if p.has(k) {
				delete(g.held, k)
			}
		}
		if len(g.held) > 0 {
			for _, k := range p.removed {
				g.held[k] = true
			}
			p.withhold()
			return fmt.Errorf("%w: source %s held since %s: %s", ErrHeld, name, g.heldSince.Format(time.RFC3339), g.reason)
		}
		d.endHold(p.s, "every withheld flag is back", now)
	}
	if len(p.removed) == 0 {
		return nil
	}
	removed, base := g.baselineCheck(p.s.accepted.each, p.s.accepted.has, p.has, now, d.cfg.Guards.Window())
	msg, trip := d.trips("source "+name, removed, base, p.keys())
	if !trip {
		return nil
	}
	d.startHold(p, msg, now)
	return fmt.Errorf("%w: source %s: %s", ErrHeld, name, msg)
}

// startHold holds p's source: its current removals are withheld from now on.
func (d *Daemon) startHold(p *sourcePlan, reason string, now time.Time) {
	g := &p.s.guard
	g.held, g.heldSince, g.reason = map[string]bool{}, now.UTC(), reason
	for _, k := range p.removed {
		g.held[k] = true
	}
	p.withhold()
	withheld := slices.Sorted(mapKeys(g.held))
	d.metrics.GuardTrips.Inc()
	d.metrics.SourceHeld.WithLabelValues(p.s.cfg.Name).Set(1)
	d.log.Error("guard: source held; its removals are withheld, its other changes and other sources still publish",
		"source", p.s.cfg.Name, "reason", reason, "withheld", shortList(withheld, 20), "release", "flagsync sync --once --force, or POST /api/v1/release?source="+p.s.cfg.Name)
	if d.notifying() {
		d.notifier.Notify(notify.GuardEvent(d.cfg.FlagSetID, fmt.Sprintf("source %s held: %s", p.s.cfg.Name, reason), withheld, now))
	}
}

// endHold ends the hold of s (why: back within bounds, or an operator release).
func (d *Daemon) endHold(s *sourceState, why string, now time.Time) {
	withheld := slices.Sorted(mapKeys(s.guard.held)) // what is still withheld (none when back)
	s.guard.held, s.guard.reason, s.guard.heldSince = nil, "", time.Time{}
	d.metrics.SourceHeld.WithLabelValues(s.cfg.Name).Set(0)
	d.metrics.GuardReleases.WithLabelValues(s.cfg.Name).Inc()
	d.log.Info("guard: source released", "source", s.cfg.Name, "why", why, "withheld", shortList(withheld, 20))
	if d.notifying() {
		d.notifier.Notify(notify.GuardReleaseEvent(d.cfg.FlagSetID, fmt.Sprintf("source %s released: %s", s.cfg.Name, why), withheld, now))
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// shortList joins at most n keys for a log line.
func shortList(keys []string, n int) string {
	if len(keys) <= n {
		return strings.Join(keys, ", ")
	}
	return strings.Join(keys[:n], ", ") + fmt.Sprintf(" ... %d more", len(keys)-n)
}

// HoldStatus describes one held source in the status.
type HoldStatus struct {
	Source   string    `json:"source"`
	Since    time.Time `json:"since"`
	Reason   string    `json:"reason"`
	Withheld []string  `json:"withheld"`
}

// recordGuardStatus copies the holds and rejections for the status (read under
// d.mu, so a status request never waits for a sync). Callers hold syncMu.
func (d *Daemon) recordGuardStatus() {
	holds := []HoldStatus{}
	rejected := []rejection{}
	for _, s := range d.srcs {
		if s.guard.held != nil {
			holds = append(holds, HoldStatus{Source: s.cfg.Name, Since: s.guard.heldSince, Reason: s.guard.reason,
				Withheld: slices.Sorted(mapKeys(s.guard.held))})
		}
		for _, k := range slices.Sorted(mapKeys(s.rejected)) {
			rejected = append(rejected, s.rejected[k])
		}
	}
	d.mu.Lock()
	d.holds, d.rejections = holds, rejected
	d.mu.Unlock()
}
