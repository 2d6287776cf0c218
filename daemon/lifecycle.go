package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/lifecycle"
	"github.com/flagsync/flagsync/notify"
	"github.com/flagsync/flagsync/sources"
)

// validateLifecycle checks the cleanup: and notify: sections.
func (c *Config) validateLifecycle() error {
	if c.Cleanup != nil {
		if err := c.Cleanup.Validate("cleanup"); err != nil {
			return err
		}
	}
	return c.Notify.Validate("notify")
}

// CleanupConfig is the cleanup: section with its defaults applied (report only when
// the section is absent).
func (c *Config) CleanupConfig() lifecycle.Config {
	var lc lifecycle.Config
	if c.Cleanup != nil {
		lc = *c.Cleanup
	}
	return lc.WithDefaults()
}

// applyExpiry classifies the validated set's flags by metadata.expiresAt, records the
// findings for status and metrics, and returns the set with the expired flags handled
// by the environment's action (disable or remove; report changes nothing). It runs at
// every sync, so an expired flag is never served with disable/remove. Only a sync
// that does disable or remove a flag compiles again (the changed document).
func (d *Daemon) applyExpiry(set *flagset.Set, secret secretFlags) (*flagset.Set, error) {
	doc := set.Document()
	now := d.now()
	findings := lifecycle.Classify(doc, now, time.Duration(d.lc.WarnBefore), time.Duration(d.lc.Grace))
	secret.redactFindings(findings)
	d.recordFindings(findings)
	d.announceExpiry(findings, now)
	if d.action == lifecycle.ActionReport {
		return set, nil
	}
	out, acts := lifecycle.Apply(doc, findings, d.action)
	if len(acts) == 0 {
		return set, nil
	}
	for _, a := range acts {
		d.log.Debug("expired flag not served as defined", "flag", a.Flag, "action", a.Kind, "expiresAt", a.ExpiresAt, "owner", a.Owner)
	}
	next, problems := flagset.CompileStrict(out)
	if len(problems) > 0 || next.Revision() == "" {
		return nil, fmt.Errorf("expiry handling: %w", problems)
	}
	return next, nil
}

// redactFindings replaces, in place, the owner and description of findings about
// secret-derived flags: a SecureString definition's metadata is part of the secret,
// and findings go to the status, the log, notifications and the audit log.
func (s secretFlags) redactFindings(findings []lifecycle.Finding) {
	for i := range findings {
		if f := &findings[i]; s.has(f.Flag) {
			if f.Owner != "" {
				f.Owner = notify.Redacted
			}
			if f.Description != "" {
				f.Description = notify.Redacted
			}
		}
	}
}

// announceExpiry logs (WARN) and notifies the findings whose status no earlier sync
// saw for that flag, so an expired flag is told about the moment the daemon acts on
// it — at start or at any sync — and once, not at every sync nor only at the cleanup
// tick. A flag whose status changes (expiring → expired) is told about again.
func (d *Daemon) announceExpiry(findings []lifecycle.Finding, now time.Time) {
	seen := make(map[string]lifecycle.Status, len(findings))
	var fresh []lifecycle.Finding
	d.mu.Lock()
	for _, f := range findings {
		if f.Status == lifecycle.StatusOK {
			continue
		}
		seen[f.Flag] = f.Status
		if d.expirySeen[f.Flag] != f.Status {
			fresh = append(fresh, f)
		}
	}
	d.expirySeen = seen
	d.mu.Unlock()
	for _, f := range fresh {
		d.logFinding(f)
	}
	if len(fresh) > 0 && d.notifying() {
		d.notifier.Notify(notify.ExpiryEvent(d.cfg.FlagSetID, fresh, d.action, now))
	}
}

// logFinding writes the WARN line for one expiry finding (not ok).
func (d *Daemon) logFinding(f lifecycle.Finding) {
	attrs := []any{"flag", f.Flag, "owner", f.Owner, "source", f.Source, "expiresAt", f.ExpiresAt}
	switch f.Status {
	case lifecycle.StatusExpiring:
		d.log.Warn("flag expires soon", append(attrs, "in", f.Remaining.Round(time.Minute))...)
	case lifecycle.StatusGrace:
		d.log.Warn("flag expired; in its grace period", attrs...)
	case lifecycle.StatusExpired:
		d.log.Warn("flag expired", append(attrs, "action", d.action)...)
	case lifecycle.StatusInvalid:
		d.log.Warn("flag has an invalid expiresAt", "flag", f.Flag, "owner", f.Owner, "problem", f.Problem)
	}
}

// recordFindings keeps the non-ok findings for the status and sets the expiry gauges.
func (d *Daemon) recordFindings(findings []lifecycle.Finding) {
	counts := map[lifecycle.Status]int{}
	var keep []lifecycle.Finding
	for _, f := range findings {
		counts[f.Status]++
		if f.Status != lifecycle.StatusOK {
			keep = append(keep, f)
		}
	}
	for _, s := range []lifecycle.Status{lifecycle.StatusExpiring, lifecycle.StatusGrace, lifecycle.StatusExpired, lifecycle.StatusInvalid} {
		d.metrics.FlagsExpiry.WithLabelValues(string(s)).Set(float64(counts[s]))
	}
	d.mu.Lock()
	d.findings = keep
	d.mu.Unlock()
}

// CleanupReport is the outcome of one cleanup run.
type CleanupReport struct {
	Action   lifecycle.ActionKind
	DryRun   bool
	Findings []lifecycle.Finding // every flag with metadata.expiresAt
	Actions  []lifecycle.Action  // what was done (or, for report/dry runs, would be)
}

// Cleanup is the scheduled expiry run (cleanup.schedule): it classifies the merged
// flags of the last fetch (before expiry handling), logs expiring and expired flags
// with their owners, and with action deleteFromSource deletes expired flags from the
// SSM/Consul source that produced them (dryRun: only logs). Every deletion decision
// writes an audit log line. It notifies a cleanup event when there were actions.
func (d *Daemon) Cleanup(ctx context.Context) (CleanupReport, error) {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	// dryRun only means something for deleteFromSource (config validation says so).
	rep := CleanupReport{Action: d.action, DryRun: d.action == lifecycle.ActionDeleteFromSource && d.lc.IsDryRun()}
	results := d.lastResults()
	if len(results) == 0 {
		return rep, errors.New("cleanup: no source has been fetched yet")
	}
	merged, prov := mergeWithProvenance(results)
	merged.Metadata = map[string]any{flagset.MetaFlagSetID: d.cfg.FlagSetID}
	set, _ := flagset.CompileStrict(merged)
	clean := set.Document()
	now := d.now()
	rep.Findings = lifecycle.Classify(clean, now, time.Duration(d.lc.WarnBefore), time.Duration(d.lc.Grace))
	secretKeys(results).redactFindings(rep.Findings)
	for _, f := range rep.Findings {
		d.logFinding(f) // the cleanup tick repeats every finding: a daily reminder
	}
	_, rep.Actions = lifecycle.Apply(clean, rep.Findings, d.action)
	var err error
	leader := d.IsLeader()
	switch {
	case d.action != lifecycle.ActionDeleteFromSource:
	case !leader:
		// With ha only the leader deletes (and writes the audit lines).
		for i := range rep.Actions {
			rep.Actions[i].Skipped = "standby replica: the leader deletes"
		}
	default:
		byName := make(map[string]sources.Source, len(d.srcs))
		for _, s := range d.srcs {
			byName[s.cfg.Name] = s.src
		}
		rep.Actions, err = storeCleanup{sources: byName, provenance: prov, dryRun: rep.DryRun, audit: d.audit}.run(ctx, rep.Findings)
	}
	for _, a := range rep.Actions {
		result := "done"
		switch {
		case a.Kind == lifecycle.ActionReport:
			result = "reported"
		case a.Skipped == "dry run":
			result = "dryRun"
		case a.Skipped != "":
			result = "skipped"
		}
		d.metrics.CleanupActions.WithLabelValues(string(a.Kind), result).Inc()
	}
	if len(rep.Actions) > 0 && d.notifying() {
		d.notifier.Notify(notify.CleanupEvent(d.cfg.FlagSetID, rep.Actions, now))
	}
	lvl := slog.LevelInfo
	if err != nil {
		lvl = slog.LevelError
	}
	d.log.Log(ctx, lvl, "cleanup", "action", d.action, "dryRun", rep.DryRun, "flagsWithExpiry", len(rep.Findings),
		"expired", len(lifecycle.Expired(rep.Findings)), "actions", len(rep.Actions), "err", err)
	return rep, err
}

// Provenance says, for each flag the sources' last good results merge to, which
// contributions shaped it, in the order applied (see sources.Provenance): lint
// --config points findings at them.
func (d *Daemon) Provenance() map[string]sources.Provenance {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	_, prov := mergeWithProvenance(d.lastResults())
	return prov
}

// lastResults is every source's last good result in precedence order.
func (d *Daemon) lastResults() []sourceResult {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []sourceResult
	for _, s := range d.srcs {
		if s.last != nil {
			out = append(out, sourceResult{name: s.cfg.Name, res: s.last})
		}
	}
	return out
}
