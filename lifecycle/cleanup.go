package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
)

// Deleter removes one flag from the store it came from. The SSM and Consul sources
// implement it. origin is the flag's metadata.source (e.g. "ssm:/flags/prod/x@3"), which
// tells the store exactly which parameter/key to delete; previous is its value before
// the deletion (for the audit log, so a deletion can be undone by hand).
type Deleter interface {
	Delete(ctx context.Context, flagKey, origin string) (previous []byte, err error)
}

// Getter is optionally implemented by a Deleter; dry runs use it to log the value that
// would be deleted.
type Getter interface {
	Get(ctx context.Context, flagKey, origin string) ([]byte, error)
}

// ErrNotDeletable is returned (wrapped) for a flag whose source cannot be deleted from.
var ErrNotDeletable = errors.New("source not deletable")

// Scheme is the store part of a metadata.source value: "ssm" for "ssm:/a/b@3",
// "file" for "file:flags.yaml", "" when there is no colon.
func Scheme(source string) string {
	if i := strings.IndexByte(source, ':'); i > 0 {
		return source[:i]
	}
	return ""
}

// Origin is a metadata.source value taken apart: "ssm:/flags/prod/x@3" is scheme "ssm",
// location "/flags/prod/x", version "3"; "consul:flags/x@812" is "consul",
// "flags/x", "812"; "file:flags.yaml" is "file", "flags.yaml", "".
type Origin struct {
	Scheme   string
	Location string
	// Version is the store's version of the value when the flag was read (SSM parameter
	// version, Consul ModifyIndex); "" when the source records none. Deleters should
	// only delete when the stored version still equals it (Consul: DeleteCAS), so a
	// value changed since the snapshot is never deleted by mistake.
	Version string
}

// ParseOrigin takes a metadata.source value apart (see Origin). The version is the part
// after the last "@" when it is all digits.
func ParseOrigin(source string) (Origin, error) {
	scheme := Scheme(source)
	if scheme == "" {
		return Origin{}, fmt.Errorf("source %q has no scheme (want e.g. ssm:/path@3)", source)
	}
	o := Origin{Scheme: scheme, Location: source[len(scheme)+1:]}
	if i := strings.LastIndexByte(o.Location, '@'); i >= 0 && i < len(o.Location)-1 {
		v := o.Location[i+1:]
		if strings.Trim(v, "0123456789") == "" {
			o.Location, o.Version = o.Location[:i], v
		}
	}
	if o.Location == "" {
		return Origin{}, fmt.Errorf("source %q has no location", source)
	}
	return o, nil
}

// Cleanup deletes every StatusExpired finding from its source store. deleters is keyed by
// Scheme (e.g. "ssm", "consul"); flags from schemes without a deleter (files, env, merged
// flags without a source) are never deleted. With dryRun nothing is deleted: the audit
// log says what would be. Every decision writes one audit line (who, what, when,
// previous value): route audit to a protected sink, as previous values may be sensitive.
// One failed deletion does not stop the others. The returned Actions (sorted by flag)
// carry Skipped for anything not deleted; err joins every deletion error.
func Cleanup(ctx context.Context, findings []Finding, deleters map[string]Deleter, dryRun bool, audit *slog.Logger) ([]Action, error) {
	if audit == nil {
		audit = slog.New(slog.DiscardHandler)
	}
	who := "flagsync-cleanup"
	if h, err := os.Hostname(); err == nil {
		who += "@" + h
	}
	expired := Expired(findings)
	sort.Slice(expired, func(i, j int) bool { return expired[i].Flag < expired[j].Flag })
	var (
		acts []Action
		errs []error
	)
	for _, fd := range expired {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("cleanup stopped before %s: %w", fd.Flag, err))
			break
		}
		act := Action{Flag: fd.Flag, Kind: ActionDeleteFromSource, ExpiresAt: fd.ExpiresAt, Owner: fd.Owner, Source: fd.Source}
		attrs := []any{
			slog.String("who", who),
			slog.String("flag", fd.Flag),
			slog.String("source", fd.Source),
			slog.String("owner", fd.Owner),
			slog.Time("expiresAt", fd.ExpiresAt),
			slog.Bool("dryRun", dryRun),
		}
		scheme := Scheme(fd.Source)
		d, ok := deleters[scheme]
		switch {
		case scheme == "file":
			act.Skipped = "flag is defined in a file: edit the file instead"
		case !ok || d == nil:
			act.Skipped = fmt.Sprintf("no deleter for source %q", fd.Source)
		case dryRun:
			act.Skipped = "dry run"
			if g, ok := d.(Getter); ok {
				prev, err := g.Get(ctx, fd.Flag, fd.Source)
				switch {
				case errors.Is(err, ErrNotDeletable):
					// A real run would refuse it too: say so, not "would be deleted".
					act.Skipped = err.Error()
				case err != nil:
					attrs = append(attrs, slog.String("getError", err.Error()))
				default:
					act.Previous = prev
				}
			}
		default:
			prev, err := d.Delete(ctx, fd.Flag, fd.Source)
			switch {
			case errors.Is(err, ErrNotDeletable):
				// A refusal by design (e.g. the flag was combined from several
				// sources) is a skip, not a failure.
				act.Skipped = err.Error()
			case err != nil:
				err = fmt.Errorf("delete %s from %s: %w", fd.Flag, fd.Source, err)
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
