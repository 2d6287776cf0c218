package daemon

import (
	"strings"
	"time"

	"github.com/flagsync/flagsync/notify"
)

// reportRejections compares the rejections of this publish with those already
// reported: each new (or changed) one is loud once — a WARN line, the per-flag
// gauge and counter, a rejected notification — and each one gone is reported once as
// cleared. Repeating the same problem at every sync says nothing new.
func (d *Daemon) reportRejections(plans []*sourcePlan, now time.Time) {
	for _, p := range plans {
		s := p.s
		name := s.cfg.Name
		for key, r := range p.rejected {
			if prev, ok := s.rejected[key]; ok && prev.Message == r.Message && prev.Kept == r.Kept {
				continue
			}
			outcome := "the flag keeps this source's last accepted value"
			if !r.Kept {
				outcome = "no accepted value from this source yet: the flag falls back to lower precedence"
			}
			d.log.Warn("value rejected", "flag", key, "source", name, "origin", originOf(r.Message), "problem", r.Message, "outcome", outcome)
			d.metrics.ValueRejections.WithLabelValues(name).Inc()
			d.metrics.FlagRejected.WithLabelValues(name, key).Set(1)
			if d.notifying() {
				d.notifier.Notify(notify.RejectionEvent(d.cfg.FlagSetID, key, originOf(r.Message), r.Message+"; "+outcome, false, now))
			}
		}
		for key, prev := range s.rejected {
			if _, still := p.rejected[key]; still {
				continue
			}
			d.log.Info("value rejection cleared", "flag", key, "source", name, "was", prev.Message)
			d.metrics.FlagRejected.DeleteLabelValues(name, key)
			if d.notifying() {
				d.notifier.Notify(notify.RejectionEvent(d.cfg.FlagSetID, key, originOf(prev.Message), prev.Message, true, now))
			}
		}
		s.rejected = p.rejected
	}
	d.recordGuardStatus()
}

// originOf extracts the "(origin)" a source problem ends with (e.g.
// consul:flags/prod/beta@42), or the origin an overlay problem starts with.
func originOf(msg string) string {
	if rest, ok := strings.CutPrefix(msg, "overlay from "); ok {
		if i := strings.Index(rest, " ignored"); i > 0 {
			return rest[:i]
		}
	}
	if strings.HasSuffix(msg, ")") {
		if i := strings.LastIndex(msg, " ("); i >= 0 {
			return msg[i+2 : len(msg)-1]
		}
	}
	return ""
}
