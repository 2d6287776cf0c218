// Package supervisor runs the daemon for a configuration file the way `flagsync run`
// does: the HTTP and flagd sync listeners, leader election, reloads and shutdown.
// It owns what outlives one configuration (listeners, the elector, metrics) and
// swaps the daemon underneath on each reload, so there is never more than one writer.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/flagsync/flagsync/daemon"
	"github.com/flagsync/flagsync/flagdsync"
	"github.com/flagsync/flagsync/ha"
)

// shutdownTimeout bounds how long in-flight HTTP requests get at shutdown.
const shutdownTimeout = 5 * time.Second

// Options says what to run.
type Options struct {
	Path   string         // the configuration file, read again on each reload
	Config *daemon.Config // Path's configuration, already loaded
	Logger *slog.Logger
	// Level is set from log.level on each reload (nil: the level is not adjusted).
	Level *slog.LevelVar
	// Reload: each signal received reloads the configuration (SIGHUP in flagsync run).
	Reload <-chan os.Signal
}

// ConfigError is a configuration the daemon cannot run; nothing was started.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Run runs until ctx is done (nil error) or the daemon stops with an error. A
// configuration it cannot run is a *ConfigError; a listener that cannot start is
// another error.
func Run(ctx context.Context, o Options) error {
	cfg, logger := o.Config, o.Logger
	metrics := daemon.NewMetrics()
	// The elector is created once and survives reloads, so a reload never hands
	// leadership over.
	el, closeEl, err := daemon.NewElector(cfg, logger)
	if err != nil {
		return &ConfigError{fmt.Errorf("config %s: ha: %w", o.Path, err)}
	}
	defer closeEl()
	opts := daemon.Options{Logger: logger, Metrics: metrics, Elector: el}
	d, err := daemon.New(cfg, opts)
	if err != nil {
		return &ConfigError{fmt.Errorf("config %s: %w", o.Path, err)}
	}
	srv := daemon.NewServer(metrics)
	srv.Set(d)
	ln, err := daemon.Listen(&cfg.HTTP, logger)
	if err != nil {
		d.Close()
		return fmt.Errorf("http.listen: %w", err)
	}
	// Stop campaigning only after the daemon stopped (its last publish may still need
	// the lease), then release the lease so a standby takes over at once.
	stopElection := campaign(ctx, el, srv, cfg.HA.Backend, logger)
	defer stopElection()
	httpSrv := daemon.NewHTTPServer(&cfg.HTTP, srv, logger)
	go func() {
		if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server stopped", "err", err)
		}
	}()
	stopSync, err := serveFlagdSync(ctx, &cfg.FlagdSync, srv, flagdsync.NewMetrics(metrics.Registry), logger)
	if err != nil {
		_ = httpSrv.Close()
		d.Close()
		return err
	}
	defer stopSync()
	logger.Info("flagsync running", "config", o.Path, "flagSetId", cfg.FlagSetID, "http", ln.Addr().String(), "tls", cfg.HTTP.TLS.On(), "schedule", cfg.Schedule)

	start := func(d *daemon.Daemon) (context.CancelFunc, chan error) {
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- d.Run(runCtx) }()
		return cancel, done
	}
	cancel, done := start(d)
	for {
		select {
		case <-o.Reload:
			nd, ncfg, err := reload(o.Path, cfg, opts)
			if err != nil {
				logger.Error("reload refused; the running configuration stays", "config", o.Path, "err", err)
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
			if o.Level != nil {
				o.Level.Set(LevelOf(cfg.Log.Level))
			}
			srv.Set(d)
			cancel, done = start(d)
			logger.Info("configuration reloaded", "config", o.Path)
		case err := <-done:
			cancel()
			shutdownCtx, stop := context.WithTimeout(context.Background(), shutdownTimeout)
			_ = httpSrv.Shutdown(shutdownCtx)
			stop()
			d.Close()
			if err != nil {
				logger.Error("daemon stopped", "err", err)
				return err
			}
			logger.Info("flagsync stopped")
			return nil
		}
	}
}

// campaign runs the leader election (when ha is on) until the returned function is
// called; that function waits until the lease is released.
func campaign(ctx context.Context, el ha.Elector, srv *daemon.Server, backend string, logger *slog.Logger) func() {
	if el == nil {
		return func() {}
	}
	elCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = el.Run(elCtx, func(ctx context.Context, fence int64) {
			logger.Info("elected leader: publishing to Redis", "backend", backend, "fence", fence)
			if d := srv.Daemon(); d != nil {
				d.Elected(ctx)
			}
		}, func() {
			logger.Warn("no longer leader: standing by (Redis is left to the leader)")
		})
	}()
	return func() { stop(); <-done }
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
// the running one. What only a restart can change keeps its running value, with a
// warning.
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

// LevelOf is the slog level log.level names (info when it names none).
func LevelOf(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
