package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/flagsync/flagsync/daemon"
	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/lifecycle"
	"github.com/flagsync/flagsync/sources"
)

func init() {
	register("stale", command{
		summary: "list expired and soon-expiring flags: stale [--within 30d] [--json] FILE | --config CFG",
		run:     runStale,
	})
}

func runStale(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cli := flag.NewFlagSet("stale", flag.ContinueOnError)
	cli.SetOutput(stderr)
	within := cli.String("within", "30d", "list flags expiring within this `duration` (e.g. 14d, 36h)")
	grace := cli.String("grace", "0", "`duration` after expiresAt before a flag counts as expired (as cleanup.grace)")
	asJSON := cli.Bool("json", false, "print JSON instead of a table")
	failExpired := cli.Bool("fail", false, "exit 1 when any flag is expired or has an invalid expiresAt")
	nowFlag := cli.String("now", "", "evaluate at this RFC 3339 `time` instead of now")
	cfgPath := cli.String("config", "", "read the live sources of this daemon `config` instead of a file")
	cli.Usage = func() {
		fmt.Fprintln(stderr, "usage: flagsync stale [flags] SNAPSHOT_OR_FLAGS_FILE\n       flagsync stale [flags] --config flagsync.yaml\n\n"+
			"Lists flags whose metadata.expiresAt has passed or falls within --within, with owner\n"+
			"and source. Exit code 0, or 1 with --fail when something is expired; 2 on usage or\n"+
			"read errors.\n\nflags:")
		cli.PrintDefaults()
	}
	if code, ok := parseFlags(cli, args); !ok {
		return code
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "flagsync stale: "+format+"\n", a...)
		return 2
	}
	if (*cfgPath == "") == (cli.NArg() != 1) || cli.NArg() > 1 {
		cli.Usage()
		return 2
	}
	win, err := lifecycle.ParseDuration(*within)
	if err != nil || win < 0 {
		return usageErr("--within: %v", orNegative(err))
	}
	gr, err := lifecycle.ParseDuration(*grace)
	if err != nil || gr < 0 {
		return usageErr("--grace: %v", orNegative(err))
	}
	now, err := parseNow(*nowFlag)
	if err != nil {
		return usageErr("--now: %v", err)
	}
	in, err := readFlagsInput(ctx, *cfgPath, cli.Args(), stderr)
	name := in.name
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	doc, err := flagset.Parse(in.data)
	if err != nil {
		fmt.Fprintf(stderr, "%s: cannot parse: %v\n", name, err)
		return 2
	}
	var listed []lifecycle.Finding
	for _, f := range lifecycle.Classify(doc, now, win, gr) {
		if f.Status != lifecycle.StatusOK {
			listed = append(listed, f)
		}
	}
	// Most urgent first: invalid, expired, in grace, expiring; then by date.
	rank := map[lifecycle.Status]int{lifecycle.StatusInvalid: 0, lifecycle.StatusExpired: 1, lifecycle.StatusGrace: 2, lifecycle.StatusExpiring: 3}
	sort.SliceStable(listed, func(i, j int) bool {
		a, b := listed[i], listed[j]
		if rank[a.Status] != rank[b.Status] {
			return rank[a.Status] < rank[b.Status]
		}
		if !a.ExpiresAt.Equal(b.ExpiresAt) {
			return a.ExpiresAt.Before(b.ExpiresAt)
		}
		return a.Flag < b.Flag
	})
	if *asJSON {
		err = writeStaleJSON(stdout, now, win, listed)
	} else {
		err = writeStaleTable(stdout, name, listed)
	}
	if err != nil {
		fmt.Fprintf(stderr, "flagsync stale: %v\n", err)
		return 2
	}
	if *failExpired {
		for _, f := range listed {
			if f.Status == lifecycle.StatusExpired || f.Status == lifecycle.StatusInvalid {
				return 1
			}
		}
	}
	return 0
}

func orNegative(err error) error {
	if err == nil {
		return errors.New("must not be negative")
	}
	return err
}

func parseNow(s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	return time.Parse(time.RFC3339, s)
}

type staleRow struct {
	lifecycle.Finding
	RemainingSeconds int64 `json:"remainingSeconds"`
}

func writeStaleJSON(w io.Writer, now time.Time, within time.Duration, listed []lifecycle.Finding) error {
	out := struct {
		Now           time.Time  `json:"now"`
		WithinSeconds int64      `json:"withinSeconds"`
		Flags         []staleRow `json:"flags"`
	}{Now: now.UTC(), WithinSeconds: int64(within / time.Second), Flags: []staleRow{}}
	for _, f := range listed {
		out.Flags = append(out.Flags, staleRow{f, int64(f.Remaining / time.Second)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeStaleTable(w io.Writer, name string, listed []lifecycle.Finding) error {
	if len(listed) == 0 {
		_, err := fmt.Fprintf(w, "%s: no expired or expiring flags\n", name)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tFLAG\tEXPIRES\tWHEN\tOWNER\tSOURCE")
	var problems []string
	for _, f := range listed {
		expires, when := "-", "-"
		if f.Status == lifecycle.StatusInvalid {
			problems = append(problems, f.Problem)
		} else {
			expires = f.ExpiresAt.UTC().Format(time.RFC3339)
			when = humanDays(f.Remaining)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Status, f.Flag, expires, when, dash(f.Owner), dash(f.Source))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range problems {
		if _, err := fmt.Fprintln(w, p); err != nil {
			return err
		}
	}
	return nil
}

func humanDays(d time.Duration) string {
	days := d.Hours() / 24
	switch {
	case math.Abs(days) < 1 && d >= 0:
		return fmt.Sprintf("in %s", d.Round(time.Minute))
	case math.Abs(days) < 1:
		return fmt.Sprintf("%s ago", (-d).Round(time.Minute))
	case d >= 0:
		return fmt.Sprintf("in %dd", int(days))
	}
	return fmt.Sprintf("%dd ago", int(-days))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// flagsInput is the document stale and lint inspect.
type flagsInput struct {
	name string // labels it in messages
	data []byte
	// For --config: where each merged flag came from, and the values the daemon could
	// not use (left out of data).
	provenance map[string]sources.Provenance
	unusable   []daemon.FlagError
}

// readFlagsInput returns the document to inspect: the one file argument, or with
// cfgPath the merged flags of the daemon's live sources (fetched once, published
// nowhere).
func readFlagsInput(ctx context.Context, cfgPath string, args []string, stderr io.Writer) (flagsInput, error) {
	if cfgPath == "" {
		data, err := readFile(args[0])
		return flagsInput{name: args[0], data: data}, err
	}
	in, err := liveSnapshot(ctx, cfgPath, stderr)
	in.name = "config " + cfgPath
	return in, err
}

// liveSnapshot runs one sync of the daemon configured in cfgPath with its outputs
// removed, so nothing is published, and returns the merged snapshot, its provenance
// and the values left out.
func liveSnapshot(ctx context.Context, cfgPath string, stderr io.Writer) (flagsInput, error) {
	// Nothing is published, notified or cleaned up: expired flags stay in the snapshot
	// (with cleanup.action disable/remove the daemon would leave them out), as listing
	// them is the point.
	cfg, err := daemon.LoadSourcesConfig(cfgPath, nil)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return flagsInput{}, fmt.Errorf("cannot read: %w", pe.Err)
		}
		return flagsInput{}, err
	}
	d, err := daemon.New(cfg, daemon.Options{Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return flagsInput{}, err
	}
	defer d.Close()
	// force: report what the sources hold even if a guard would stop a publish.
	rep, err := d.Sync(ctx, true)
	if err != nil && d.Snapshot() == nil {
		return flagsInput{}, fmt.Errorf("sync: %w", err)
	}
	snap := d.Snapshot()
	if snap == nil {
		return flagsInput{}, errors.New("sync produced no snapshot")
	}
	return flagsInput{data: snap, provenance: d.Provenance(), unusable: rep.FlagErrors}, nil
}
