package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/flagsync/flagsync/daemon"
)

func init() {
	register("sync", command{summary: "run one sync (--once) and exit non-zero on failure; for cron jobs and CI", run: syncOnce})
}

func syncOnce(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("sync", flag.ContinueOnError)
	fset.SetOutput(stderr)
	configPath := fset.String("config", "", "configuration file (default ./"+defaultConfigPath+")")
	once := fset.Bool("once", false, "run one sync and exit (required; 'flagsync run' is the daemon)")
	force := fset.Bool("force", false, "release every held source (publish its withheld removals, reset its guard baseline), skip the whole-set guard, and publish even if a source has never fetched")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: flagsync sync --once [--config FILE] [--force]")
		fset.PrintDefaults()
	}
	if code, ok := parseFlags(fset, args); !ok {
		return code
	}
	if !*once {
		fmt.Fprintln(stderr, "flagsync sync: --once is required (a continuous sync is 'flagsync run')")
		return 2
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(stderr, "flagsync sync: unexpected argument %q\n", fset.Arg(0))
		return 2
	}
	path, cfg, code := loadConfig("sync", *configPath, stderr)
	if cfg == nil {
		return code
	}
	logger := newLogger(cfg.Log, new(slog.LevelVar), stderr)
	setDefaultMemoryLimit() // a cron job shares the daemon's memory budget
	d, err := daemon.New(cfg, daemon.Options{Logger: logger})
	if err != nil {
		fmt.Fprintf(stderr, "flagsync sync: config %s: %v\n", path, err)
		return 2
	}
	defer d.Close()
	rep, err := d.Sync(ctx, *force)
	for _, fe := range rep.FlagErrors {
		fmt.Fprintf(stderr, "flag problem (%s): %s: %s\n", fe.Source, fe.Path, fe.Message)
	}
	fmt.Fprintf(stdout, "%s: revision %s generation %d, %d flags, %d flag problems, %s\n",
		rep.Result, rep.Revision, rep.Generation, rep.Flags, len(rep.FlagErrors), rep.Duration.Round(1000))
	for _, name := range rep.Held {
		fmt.Fprintf(stderr, "source %s is held by its guard: its removals are withheld (release: flagsync sync --once --force)\n", name)
	}
	if err != nil {
		fmt.Fprintf(stderr, "flagsync sync: %v\n", err)
		return 1
	}
	return 0
}
