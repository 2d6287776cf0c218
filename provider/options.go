package provider

import (
	"log/slog"
	"time"
)

// Defaults for the options.
const (
	DefaultPollInterval = 5 * time.Second
	DefaultStaleAfter   = 30 * time.Second
	DefaultInitTimeout  = 5 * time.Second
)

// Option configures a Provider.
type Option func(*options)

type options struct {
	pollInterval time.Duration
	staleAfter   time.Duration
	maxAge       time.Duration
	initTimeout  time.Duration
	logger       *slog.Logger
	fixedNow     int64 // unix seconds for $flagd.timestamp; 0 = the current time
}

func defaultOptions() options {
	return options{
		pollInterval: DefaultPollInterval,
		staleAfter:   DefaultStaleAfter,
		initTimeout:  DefaultInitTimeout,
		logger:       slog.Default(),
	}
}

// WithPollInterval sets how often the source is checked even without a change
// notification (file: a stat; Redis: a GET of the revision key). Default 5s.
// Values <= 0 keep the default.
func WithPollInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.pollInterval = d
		}
	}
}

// WithStaleAfter sets how long the source may be unreadable before the provider
// reports PROVIDER_STALE (it keeps serving the last good snapshot). Default 30s.
// Values <= 0 keep the default.
func WithStaleAfter(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.staleAfter = d
		}
	}
}

// WithMaxAge makes the provider report PROVIDER_STALE when the snapshot's own
// metadata "flagsync.generatedAt" is older than d, i.e. the daemon stopped syncing
// even though the file or key is still readable. 0 (the default) disables the check.
func WithMaxAge(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.maxAge = d
		}
	}
}

// WithInitTimeout bounds how long Init waits for the first good snapshot.
// Default 5s. Values <= 0 keep the default.
func WithInitTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.initTimeout = d
		}
	}
}

// WithLogger sets the logger; nil keeps slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// withFixedNow evaluates with a fixed $flagd.timestamp (unix seconds), so the
// conformance suite's time-dependent cases are reproducible.
func withFixedNow(unix int64) Option {
	return func(o *options) { o.fixedNow = unix }
}
