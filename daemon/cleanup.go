package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"

	"github.com/flagsync/flagsync/lifecycle"
	"github.com/flagsync/flagsync/sources"
)

// storeCleanup is cleanup.action deleteFromSource: it deletes expired flags from the
// store that produced them. A flag is deleted only when one source alone shaped it
// (its Provenance has one contribution), that source's store can delete
// (sources.Deleter) and the contribution is not a file (files are edited in git, not
// by the daemon). The deleter gets the typed origin the source read, so it deletes
// exactly that parameter or key, and only while its version is unchanged.
type storeCleanup struct {
	// sources are the configured sources by name.
	sources map[string]sources.Source
	// provenance is merge's answer for the flags being cleaned up.
	provenance map[string]sources.Provenance
	// dryRun deletes nothing: the audit log says what would be deleted.
	dryRun bool
	// audit gets one line per decision (who, what, when, previous value): route it to
	// a protected sink, as previous values may be sensitive.
	audit *slog.Logger
}

// run handles every StatusExpired finding. One failed deletion does not stop the
// others. The Actions (sorted by flag) carry Skipped for anything not deleted; err
// joins every deletion error.
func (c storeCleanup) run(ctx context.Context, findings []lifecycle.Finding) ([]lifecycle.Action, error) {
	audit := c.audit
	if audit == nil {
		audit = slog.New(slog.DiscardHandler)
	}
	who := "flagsync-cleanup"
	if h, err := os.Hostname(); err == nil {
		who += "@" + h
	}
	expired := lifecycle.Expired(findings)
	sort.Slice(expired, func(i, j int) bool { return expired[i].Flag < expired[j].Flag })
	var (
		acts []lifecycle.Action
		errs []error
	)
	for _, fd := range expired {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("cleanup stopped before %s: %w", fd.Flag, err))
			break
		}
		prov := c.provenance[fd.Flag]
		act := lifecycle.Action{Flag: fd.Flag, Kind: lifecycle.ActionDeleteFromSource, ExpiresAt: fd.ExpiresAt, Owner: fd.Owner, Source: fd.Source}
		if s := prov.String(); s != "" {
			act.Source = s
		}
		attrs := []any{
			slog.String("who", who),
			slog.String("flag", fd.Flag),
			slog.String("source", act.Source),
			slog.String("owner", fd.Owner),
			slog.Time("expiresAt", fd.ExpiresAt),
			slog.Bool("dryRun", c.dryRun),
		}
		del, origin, reason := c.deleterFor(fd.Flag, prov)
		switch {
		case reason != "":
			act.Skipped = reason
		case c.dryRun:
			act.Skipped = "dry run"
			if g, ok := del.(sources.Getter); ok {
				prev, err := g.Get(ctx, fd.Flag, origin)
				switch {
				case errors.Is(err, sources.ErrNotDeletable):
					// A real run would refuse it too: say so, not "would be deleted".
					act.Skipped = err.Error()
				case err != nil:
					attrs = append(attrs, slog.String("getError", err.Error()))
				default:
					act.Previous = prev
				}
			}
		default:
			prev, err := del.Delete(ctx, fd.Flag, origin)
			switch {
			case errors.Is(err, sources.ErrNotDeletable):
				act.Skipped = err.Error() // a refusal by design is a skip, not a failure
			case err != nil:
				err = fmt.Errorf("delete %s from %s: %w", fd.Flag, origin, err)
				act.Skipped = err.Error()
				errs = append(errs, err)
			}
			act.Previous = prev
		}
		attrs = append(attrs, slog.String("previous", string(act.Previous)))
		switch {
		case act.Skipped == "":
			audit.InfoContext(ctx, "flag deleted from source", attrs...)
		case act.Skipped == "dry run":
			audit.InfoContext(ctx, "flag would be deleted from source (dry run)", attrs...)
		default:
			audit.WarnContext(ctx, "flag not deleted from source", append(attrs, slog.String("reason", act.Skipped))...)
		}
		acts = append(acts, act)
	}
	return acts, errors.Join(errs...)
}

// deleterFor finds the store that may delete flag, or says why none may.
func (c storeCleanup) deleterFor(flag string, prov sources.Provenance) (sources.Deleter, sources.Origin, string) {
	if len(prov) == 0 {
		return nil, sources.Origin{}, "no source produced the flag"
	}
	only, ok := prov.Single()
	if !ok {
		return nil, sources.Origin{}, fmt.Sprintf("%v: %s was combined from several sources (%s)", sources.ErrNotDeletable, flag, prov)
	}
	if only.Origin.IsZero() {
		return nil, sources.Origin{}, fmt.Sprintf("%v: source %s recorded no origin for %s", sources.ErrNotDeletable, only.Source, flag)
	}
	if only.Origin.Scheme == "file" {
		return nil, sources.Origin{}, "flag is defined in a file: edit the file instead"
	}
	del, ok := c.sources[only.Source].(sources.Deleter)
	if !ok {
		return nil, sources.Origin{}, fmt.Sprintf("no deleter for source %s (%s)", only.Source, only.Origin)
	}
	return del, only.Origin, ""
}
