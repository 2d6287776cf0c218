package daemon

import (
	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/notify"
)

// notifyPublish sends the flag changes between the previous snapshot (prev, nil on the
// very first publish) and snap, comparing the sets they were compiled to.
func (d *Daemon) notifyPublish(prev, snap *snapshot) {
	if !d.notifying() {
		return
	}
	var prevSet *flagset.Set
	if prev != nil {
		prevSet = prev.set
	}
	if ev := notify.PublishEvent(prevSet, snap.set, d.now()); len(ev.Changes) > 0 {
		d.notifier.Notify(ev)
	}
}

// notifying tells whether events should be built and sent: some sink is configured,
// and this replica leads (with ha, every replica syncs the same changes; only the
// leader tells about them, so receivers get each event once).
func (d *Daemon) notifying() bool { return d.notifier.Active() && d.IsLeader() }
