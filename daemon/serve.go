package daemon

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/ha"
	"github.com/flagsync/flagsync/statuspage"
)

type elector = ha.Elector

// servedSet is the flag set OFREP and the status page evaluate: the compiled set of
// the snapshot last published (or held by an output), replaced, never mutated. It is
// the set the sync compiled to validate the snapshot, so serving compiles nothing.
type servedSet struct {
	cur atomic.Pointer[served] // nil until there is a snapshot
	// announce tells OFREP's event streams the revision now served (nil: none).
	announce atomic.Pointer[func(revision string) bool]
}

// served is a set with the flags of it that are secret-derived (nil: unknown).
type served struct {
	set    *flagset.Set
	secret secretFlags
}

// refreshFlagSet makes the current snapshot the one served. Called by catchUp
// (syncMu held), so what is served has been offered to the outputs.
func (d *Daemon) refreshFlagSet() {
	d.mu.Lock()
	cur := d.current
	d.mu.Unlock()
	if cur == nil || cur.set == nil {
		return
	}
	d.flagSet.cur.Store(&served{set: cur.set, secret: cur.secret})
	d.announceServed()
}

// announceTo makes every set served from now on announced to fn (OFREP's event
// streams), starting with the one served now.
func (d *Daemon) announceTo(fn func(revision string) bool) {
	d.flagSet.announce.Store(&fn)
	d.announceServed()
}

func (d *Daemon) announceServed() {
	fn, s := d.flagSet.announce.Load(), d.flagSet.cur.Load()
	if fn != nil && s != nil {
		(*fn)(s.set.Revision())
	}
}

// FlagSet is the compiled current snapshot (nil before there is one). OFREP and the
// status page read it; it is replaced, never mutated.
func (d *Daemon) FlagSet() *flagset.Set {
	if s := d.flagSet.cur.Load(); s != nil {
		return s.set
	}
	return nil
}

// carryFlagSet makes a freshly built daemon serve prev's set until its first publish,
// so a config reload never leaves OFREP without flags.
func (d *Daemon) carryFlagSet(prev *Daemon) {
	if prev == nil || prev == d {
		return
	}
	if s := prev.flagSet.cur.Load(); s != nil {
		d.flagSet.cur.CompareAndSwap(nil, s)
	}
}

// statusPage returns the status page's input: the served set and the daemon's state.
func (d *Daemon) statusPage() (*flagset.Set, statuspage.Data) {
	st := d.Status()
	data := statuspage.Data{FlagSetID: st.FlagSetID, Guard: st.Guard}
	if st.LastSync != nil {
		data.LastSync = st.LastSync.At
		if st.LastSync.Error != "" {
			data.SyncErrors = append(data.SyncErrors, st.LastSync.Error)
		}
	}
	for _, fe := range st.FlagErrors {
		data.SyncErrors = append(data.SyncErrors, fmt.Sprintf("%s %s: %s", fe.Source, fe.Path, fe.Message))
	}
	calls := d.apiCalls()
	for _, s := range st.Sources {
		src := statuspage.Source{Name: s.Name, Type: s.Type, LastError: s.LastError, Flags: s.Definitions, APICalls: calls[s.Name]}
		src.LastSuccess = timeOf(s.LastSuccess)
		src.LastErrorAt = timeOf(s.LastErrorAt)
		data.Sources = append(data.Sources, src)
	}
	for _, o := range st.Outputs {
		out := statuspage.Output{Name: o.Name, Target: o.Target, UpToDate: o.UpToDate, LastError: o.LastError}
		out.LastSuccess = timeOf(o.LastSuccess)
		out.LastErrorAt = timeOf(o.LastErrorAt)
		if out.LastSuccess.After(data.LastPublish) {
			data.LastPublish = out.LastSuccess
		}
		data.Outputs = append(data.Outputs, out)
	}
	if h := d.HAStatus(); h != nil {
		data.Leader, data.Fence = h.Role, h.Fence
	}
	s := d.flagSet.cur.Load()
	if s == nil {
		return nil, data
	}
	data.Secret = func(key string) bool { return isSecret(s.set, s.secret, key) }
	return s.set, data
}

func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// apiCalls sums flagsync_source_api_calls_total over operations, by source.
func (d *Daemon) apiCalls() map[string]int64 {
	ch := make(chan prometheus.Metric, 16)
	go func() {
		d.metrics.SourceAPICalls.Collect(ch)
		close(ch)
	}()
	out := map[string]int64{}
	for m := range ch {
		var pb dto.Metric
		if m.Write(&pb) != nil || pb.Counter == nil {
			continue
		}
		for _, l := range pb.Label {
			if l.GetName() == "source" {
				out[l.GetValue()] += int64(pb.Counter.GetValue())
			}
		}
	}
	return out
}
