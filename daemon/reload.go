// Reloads: what a new daemon for a reloaded configuration carries over from the old one.

package daemon

import (
	"reflect"
	"time"

	"github.com/flagsync/flagsync/sources"
)

// InheritSources copies old's last good result (and its time) into every source of d
// whose configuration is identical in old: same name, type, timeout and entry content
// after ${ENV} expansion. Call it on a SIGHUP reload, before d runs: without it the new
// daemon treats every source as never fetched, so one that fails right after the
// reload (a store briefly down) would hold back all publishing, although old had a
// good result for that very configuration. A source whose entry changed starts fresh:
// its old result answers a different question. Only the daemon's result is carried;
// the new source objects keep no cache from old and fetch normally. Sources of d that
// already have a result keep it.
func (d *Daemon) InheritSources(old *Daemon) {
	if old == nil || old == d {
		return
	}
	type carried struct {
		cfg         SourceConfig
		last        *sources.Result
		lastSuccess time.Time
		accepted    accepted
		guard       guardState
		rejected    map[string]rejection
	}
	// The publish state is read under old.syncMu (old has stopped syncing by now, the
	// lock only orders memory); the results under old.mu; d's under d.mu. Never two
	// of them at once.
	old.syncMu.Lock()
	prev := make(map[string]carried, len(old.srcs))
	for _, s := range old.srcs {
		prev[s.cfg.Name] = carried{cfg: s.cfg, accepted: s.accepted, guard: s.guard, rejected: s.rejected}
	}
	whole := old.whole
	old.syncMu.Unlock()
	old.mu.Lock()
	expirySeen := old.expirySeen // announced already: a reload does not repeat it
	for _, s := range old.srcs {
		c := prev[s.cfg.Name]
		c.last, c.lastSuccess = s.last, s.lastSuccess
		prev[s.cfg.Name] = c
	}
	old.mu.Unlock()
	n := 0
	d.syncMu.Lock()
	d.whole = whole
	d.mu.Lock()
	d.expirySeen = expirySeen
	d.mu.Unlock()
	for _, s := range d.srcs {
		c, ok := prev[s.cfg.Name]
		if ok && !sameSourceConfig(s.cfg, c.cfg) {
			s.reconfigured = true
		}
		if !ok || s.last != nil || !sameSourceConfig(s.cfg, c.cfg) {
			continue
		}
		// A hold, its baseline and the accepted contributions answer the same
		// question as before: a reload must not publish a removal the guard holds,
		// nor a value the daemon rejected.
		s.accepted, s.guard, s.rejected = c.accepted, c.guard, c.rejected
		if c.last == nil {
			continue
		}
		d.mu.Lock()
		// Results are never mutated once returned, so both daemons may share it.
		s.last, s.lastSuccess = c.last, c.lastSuccess
		d.mu.Unlock()
		n++
		// The gauge follows lastSuccess (Options.Metrics may be a new set).
		d.metrics.SourceLastSuccess.WithLabelValues(s.cfg.Name).Set(float64(c.lastSuccess.UnixMilli()) / 1000)
	}
	d.syncMu.Unlock()
	d.log.Info("sources carried their last good result over the reload", "carried", n, "sources", len(d.srcs))
}

// sameSourceConfig tells whether two source entries configure the same fetch. The
// entries are compared by their decoded content, so comments, key order and layout
// do not count, but any value does (a changed watchDebounce too: being conservative
// costs at worst one sync held back while the source is down).
func sameSourceConfig(a, b SourceConfig) bool {
	if a.Name != b.Name || a.Type != b.Type || a.Timeout != b.Timeout || a.Node == nil || b.Node == nil {
		return false
	}
	var av, bv any
	if a.Node.Decode(&av) != nil || b.Node.Decode(&bv) != nil {
		return false
	}
	return reflect.DeepEqual(av, bv)
}
