package daemon

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/ha"
	"github.com/flagsync/flagsync/statuspage"
)

type elector = ha.Elector

// compiledSet is a snapshot and its compiled flag set.
type compiledSet struct {
	snap *snapshot // nil for a set carried over from the daemon before a reload
	set  *flagset.Set
}

// servedSet is the flag set OFREP and the status page evaluate. A compiled set holds
// the whole document in memory (about as much again as a sync's peak for 10k flags),
// so it is built only once somebody asks for it; from then on every new snapshot is
// compiled right after its publish, so requests never wait for a compile.
type servedSet struct {
	mu     sync.Mutex                  // one compile at a time
	latest atomic.Pointer[snapshot]    // the snapshot last published (or held)
	cur    atomic.Pointer[compiledSet] // nil until first asked for
}

// compiled returns snap compiled, compiling it only if it is not the snapshot
// compiled last, and makes it the set served.
func (d *Daemon) compiled(snap *snapshot) (*flagset.Set, error) {
	d.flagSet.mu.Lock()
	defer d.flagSet.mu.Unlock()
	if c := d.flagSet.cur.Load(); c != nil && c.snap == snap {
		return c.set, nil
	}
	set, problems, err := flagset.Load(snap.bytes)
	if err != nil {
		return nil, fmt.Errorf("compile snapshot %s: %w", snap.revision, err)
	}
	if len(problems) > 0 {
		// Never happens for a snapshot this daemon built (flags with problems are
		// dropped before publishing); a loaded one is checked by snapshotFrom.
		return nil, fmt.Errorf("compile snapshot %s: %w", snap.revision, problems)
	}
	d.flagSet.cur.Store(&compiledSet{snap: snap, set: set})
	return set, nil
}

// refreshFlagSet records the current snapshot as the one to serve, and compiles it
// at once when a set is already being served. Called by catchUp (syncMu held).
func (d *Daemon) refreshFlagSet() {
	d.mu.Lock()
	cur := d.current
	d.mu.Unlock()
	if cur == nil || cur.bytes == nil {
		return
	}
	d.flagSet.latest.Store(cur)
	if d.flagSet.cur.Load() == nil {
		return // nobody has asked yet: FlagSet compiles on demand
	}
	if _, err := d.compiled(cur); err != nil {
		d.log.Error("cannot serve the current snapshot over OFREP/status page", "err", err)
	}
}

// FlagSet is the compiled current snapshot (nil before there is one). OFREP and the
// status page read it; it is replaced, never mutated.
func (d *Daemon) FlagSet() *flagset.Set {
	latest := d.flagSet.latest.Load()
	c := d.flagSet.cur.Load()
	if c != nil && (latest == nil || c.snap == latest) {
		return c.set
	}
	if latest == nil {
		return nil
	}
	set, err := d.compiled(latest)
	if err != nil {
		d.log.Error("cannot serve the current snapshot over OFREP/status page", "err", err)
		if c != nil {
			return c.set
		}
		return nil
	}
	return set
}

// carryFlagSet makes a freshly built daemon serve prev's set until its first publish,
// so a config reload never leaves OFREP without flags.
func (d *Daemon) carryFlagSet(prev *Daemon) {
	if prev == nil || prev == d || d.flagSet.cur.Load() != nil {
		return
	}
	if set := prev.FlagSet(); set != nil {
		d.flagSet.cur.CompareAndSwap(nil, &compiledSet{set: set})
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
	return d.FlagSet(), data
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
