package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/daemon"
	"github.com/flagsync/flagsync/flagdsync"
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
	metrics := daemon.NewMetrics()
	// The elector is created once and survives reloads, so a SIGHUP never hands
	// leadership over.
	el, closeEl, err := daemon.NewElector(cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "flagsync run: config %s: ha: %v\n", path, err)
		return 2
	}
	defer closeEl()
	opts := daemon.Options{Logger: logger, Metrics: metrics, Elector: el}
	d, err := daemon.New(cfg, opts)
	if err != nil {
		fmt.Fprintf(stderr, "flagsync run: config %s: %v\n", path, err)
		return 2
	}
	srv := daemon.NewServer(metrics)
	srv.Set(d)
	ln, err := daemon.Listen(&cfg.HTTP, logger)
	if err != nil {
		fmt.Fprintf(stderr, "flagsync run: http.listen: %v\n", err)
		d.Close()
		return 1
	}
	elCtx, stopEl := context.WithCancel(ctx)
	elDone := make(chan struct{})
	if el != nil {
		go func() {
			defer close(elDone)
			_ = el.Run(elCtx, func(ctx context.Context, fence int64) {
				logger.Info("elected leader: publishing to Redis", "backend", cfg.HA.Backend, "fence", fence)
				if d := srv.Daemon(); d != nil {
					d.Elected(ctx)
				}
			}, func() {
				logger.Warn("no longer leader: standing by (Redis is left to the leader)")
			})
		}()
	} else {
		close(elDone)
	}
	// Stop campaigning only after the daemon stopped (its last publish may still need
	// the lease), then release the lease so a standby takes over at once.
	defer func() { stopEl(); <-elDone }()
	httpSrv := daemon.NewHTTPServer(&cfg.HTTP, srv, logger)
	go func() {
		if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server stopped", "err", err)
		}
	}()
	stopSync, err := serveFlagdSync(ctx, &cfg.FlagdSync, srv, flagdsync.NewMetrics(metrics.Registry), logger)
	if err != nil {
		fmt.Fprintf(stderr, "flagsync run: %v\n", err)
		_ = httpSrv.Close()
		d.Close()
		return 1
	}
	defer stopSync()
	logger.Info("flagsync running", "config", path, "flagSetId", cfg.FlagSetID, "http", ln.Addr().String(), "tls", cfg.HTTP.TLS.On(), "schedule", cfg.Schedule)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	start := func(d *daemon.Daemon) (context.CancelFunc, chan error) {
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- d.Run(runCtx) }()
		return cancel, done
	}
	cancel, done := start(d)
	for {
		select {
		case <-hup:
			nd, ncfg, err := reload(path, cfg, opts)
			if err != nil {
				logger.Error("reload refused; the running configuration stays", "config", path, "err", err)
				continue
			}
			// Stop the old pipeline (its in-flight sync finishes) before the new one
			// starts, so there is never more than one writer.
			cancel()
			<-done
			// Sources whose entry did not change keep the old pipeline's last good
			// result, so one failing right after the reload does not hold back
			// publishing as if it had never answered.
			nd.InheritSources(d)
			// The old daemon no longer writes; closing it may wait for queued change
			// notifications, which must not delay the new configuration.
			go d.Close()
			d, cfg = nd, ncfg
			level.Set(levelOf(cfg.Log.Level))
			srv.Set(d)
			cancel, done = start(d)
			logger.Info("configuration reloaded", "config", path)
		case err := <-done:
			cancel()
			shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
			_ = httpSrv.Shutdown(shutdownCtx)
			stop()
			d.Close()
			if err != nil {
				logger.Error("daemon stopped", "err", err)
				return 1
			}
			logger.Info("flagsync stopped")
			return 0
		}
	}
}

// serveFlagdSync starts the flagd sync port when flagdSync.enabled; the returned
// function stops it and waits until it has.
func serveFlagdSync(ctx context.Context, cfg *daemon.FlagdSyncConfig, srv *daemon.Server, m *flagdsync.Metrics, logger *slog.Logger) (func(), error) {
	if !cfg.Enabled {
		return func() {}, nil
	}
	fs, err := flagdsync.Listen(cfg, srv, m, logger)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fs.Serve(ctx)
	}()
	addrs := make([]string, 0, 2)
	for _, a := range fs.Addrs() {
		addrs = append(addrs, a.String())
	}
	logger.Info("flagd sync serving (flagd.sync.v1.FlagSyncService)", "listen", addrs, "tls", cfg.TLS.On())
	return func() { cancel(); <-done }, nil
}

// reload reads the configuration again and builds a daemon for it, without touching
// the running one.
func reload(path string, old *daemon.Config, opts daemon.Options) (*daemon.Daemon, *daemon.Config, error) {
	cfg, err := daemon.LoadConfig(path, nil)
	if err != nil {
		return nil, nil, err
	}
	if cfg.HTTP.Listen != old.HTTP.Listen || cfg.HTTP.TLS != old.HTTP.TLS || cfg.HTTP.Limits != old.HTTP.Limits {
		// Auth, allowed hosts and maxBodyBytes follow the reload; the listener does not.
		opts.Logger.Warn("http.listen, http.tls or http.limits changed; the listener keeps its settings until restart (maxBodyBytes follows the reload)", "listen", old.HTTP.Listen)
		cfg.HTTP.Listen, cfg.HTTP.TLS = old.HTTP.Listen, old.HTTP.TLS
	}
	if cfg.FlagdSync != old.FlagdSync {
		opts.Logger.Warn("flagdSync changed; the flagd sync port keeps its settings until restart (auth follows the reload)")
		cfg.FlagdSync = old.FlagdSync
	}
	if cfg.HA != old.HA || (old.HA.Enabled && !cfg.Outputs.Redis.Same(old.Outputs.Redis)) {
		// The elector outlives reloads (leadership must not flap on SIGHUP).
		opts.Logger.Warn("ha or outputs.redis changed while ha is enabled; the election keeps its settings until restart")
	}
	if cfg.Log.Format != old.Log.Format {
		opts.Logger.Warn("log.format changed; it takes effect on restart")
	}
	d, err := daemon.New(cfg, opts)
	if err != nil {
		return nil, nil, err
	}
	return d, cfg, nil
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
	level.Set(levelOf(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func levelOf(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// redisLog adapts go-redis's internal logging to slog.
type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, "redis client", "message", fmt.Sprintf(format, v...))
}
