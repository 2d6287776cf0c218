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
	var prevSecret secretFlags
	if prev != nil {
		prevSet, prevSecret = prev.set, prev.secret
	}
	if ev := notify.PublishEvent(prevSet, snap.set, d.now()); len(ev.Changes) > 0 {
		// Old states come from prev, new ones from snap: a flag secret in either
		// carries no value in the event.
		ev.RedactSecrets(func(key string) bool {
			return isSecret(snap.set, snap.secret, key) || (prevSet != nil && isSecret(prevSet, prevSecret, key))
		})
		d.notifier.Notify(ev)
	}
}

// notifying tells whether events should be built and sent: some sink is configured,
// and this replica leads (with ha, every replica syncs the same changes; only the
// leader tells about them, so receivers get each event once).
func (d *Daemon) notifying() bool { return d.notifier.Active() && d.IsLeader() }
