package daemon

import (
	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/notify"
)

// notifyPublish sends the flag changes between the previous snapshot (prev, nil on the
// very first publish) and snap. Called with syncMu held. Both sets come from
// d.compiled, which keeps the served set: the previous one is normally still cached,
// and the new one is compiled once for both the notification and serving.
func (d *Daemon) notifyPublish(prev, snap *snapshot) {
	if !d.notifying() {
		return
	}
	var prevSet *flagset.Set
	if prev != nil && prev.bytes != nil {
		var err error
		if prevSet, err = d.compiled(prev); err != nil {
			d.log.Warn("cannot read the previous snapshot for the change notification", "err", err)
		}
	}
	next, err := d.compiled(snap)
	if err != nil {
		d.log.Warn("cannot build the change notification", "err", err)
		return
	}
	if ev := notify.PublishEvent(prevSet, next, d.now()); len(ev.Changes) > 0 {
		d.notifier.Notify(ev)
	}
}

// notifying tells whether events should be built and sent: some sink is configured,
// and this replica leads (with ha, every replica syncs the same changes; only the
// leader tells about them, so receivers get each event once).
func (d *Daemon) notifying() bool { return d.notifier.Active() && d.IsLeader() }
