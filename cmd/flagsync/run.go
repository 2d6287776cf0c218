package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/daemon"
	"github.com/flagsync/flagsync/supervisor"
)

// defaultConfigPath is where run and sync look without --config.
const defaultConfigPath = "flagsync.yaml"

// defaultMemoryLimit is the soft Go memory limit of `flagsync run` unless GOMEMLIMIT
// is set (see docs/CONFIG.md, "Memory").
const defaultMemoryLimit = 40 << 20

// setDefaultMemoryLimit sets the soft Go memory limit unless GOMEMLIMIT is set.
// Each sync builds a new snapshot next to the previous one and then drops it;
// without a limit the Go heap grows to twice the peak before collecting. A soft
// limit keeps a 10k-flag daemon well under 64 MB. It is soft: a larger flag set
// still works (the GC just runs more often); set GOMEMLIMIT to override.
func setDefaultMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}

func init() {
	register("run", command{summary: "run the sync daemon (schedule + watch) with its HTTP status endpoints", run: runDaemon})
}

func runDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("run", flag.ContinueOnError)
	fset.SetOutput(stderr)
	configPath := fset.String("config", "", "configuration file (default ./"+defaultConfigPath+")")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: flagsync run [--config FILE]\n\nRuns until SIGINT/SIGTERM; SIGHUP reloads the configuration.")
		fset.PrintDefaults()
	}
	if code, ok := parseFlags(fset, args); !ok {
		return code
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(stderr, "flagsync run: unexpected argument %q\n", fset.Arg(0))
		return 2
	}
	path, cfg, code := loadConfig("run", *configPath, stderr)
	if cfg == nil {
		return code
	}
	level := new(slog.LevelVar)
	logger := newLogger(cfg.Log, level, stderr)
	setDefaultMemoryLimit()
	// go-redis logs dial failures through the standard logger; route them to slog at
	// debug: the daemon already reports output errors in its own log and status.
	redis.SetLogger(redisLog{logger})
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	err := supervisor.Run(ctx, supervisor.Options{Path: path, Config: cfg, Logger: logger, Level: level, Reload: hup})
	var cfgErr *supervisor.ConfigError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &cfgErr):
		fmt.Fprintf(stderr, "flagsync run: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "flagsync run: %v\n", err)
		return 1
	}
}

// loadConfig finds and loads the configuration for command name. On failure it has
// printed why (and how to start, when there is no config at all) and returns the
// exit code with a nil config.
func loadConfig(name, flagPath string, stderr io.Writer) (string, *daemon.Config, int) {
	load := daemon.LoadConfig
	if name != "run" {
		load = daemon.LoadConfigNoHTTP // serves no HTTP: the daemon's tokens need not be here
	}
	path := flagPath
	if path == "" {
		path = defaultConfigPath
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			wd, _ := os.Getwd()
			fmt.Fprintf(stderr, "flagsync %s: no configuration: looked for ./%s in %s and it does not exist.\n", name, defaultConfigPath, wd)
			fmt.Fprintf(stderr, "To start, copy the example and edit it:\n    cp examples/quickstart/flagsync.yaml .\n")
			fmt.Fprintf(stderr, "or name a configuration file:\n    flagsync %s --config path/to/flagsync.yaml\n", name)
			fmt.Fprintf(stderr, "(or try it out from the repository root with: make run). Keys are documented in docs/CONFIG.md.\n")
			return path, nil, 2
		}
	}
	cfg, err := load(path, nil)
	if err != nil {
		fmt.Fprintf(stderr, "flagsync %s: %v\n", name, err)
		return path, nil, 2
	}
	return path, cfg, 0
}

// newLogger builds the slog logger the configuration asks for.
func newLogger(c daemon.LogConfig, level *slog.LevelVar, w io.Writer) *slog.Logger {
	level.Set(supervisor.LevelOf(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// redisLog adapts go-redis's internal logging to slog.
type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, "redis client", "message", fmt.Sprintf(format, v...))
}
