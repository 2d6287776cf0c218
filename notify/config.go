package notify

import (
	"fmt"
	"net/url"
	"path"
	"time"

	"github.com/flagsync/flagsync/lifecycle"
)

// Config is the daemon's `notify:` section.
//
//	notify:
//	  queueSize: 256
//	  webhooks:
//	    - name: audit
//	      url: https://hooks.example.internal/flagsync
//	      format: json            # json (default) or slack
//	      secret: ${FLAGSYNC_WEBHOOK_SECRET}
//	      filter: {flags: ["checkout_*"], kinds: [changed, removed, guard]}
//	  exec:
//	    - name: smoke
//	      command: ["./scripts/smoke.sh", "--quick"]
//	      timeout: 60s
type Config struct {
	// QueueSize bounds each sink's queue (default 256); events beyond it are dropped and counted.
	QueueSize int             `yaml:"queueSize"`
	Webhooks  []WebhookConfig `yaml:"webhooks"`
	Exec      []ExecConfig    `yaml:"exec"`
}

// WebhookConfig is one HTTP receiver.
type WebhookConfig struct {
	Name   string `yaml:"name"`
	URL    string `yaml:"url"`
	Format string `yaml:"format"` // "json" (default) or "slack"
	// Secret enables the X-Flagsync-Signature header (HMAC-SHA256, see Sign).
	Secret  string            `yaml:"secret"`
	Headers map[string]string `yaml:"headers"`
	// Timeout is per attempt (default 10s).
	Timeout lifecycle.Duration `yaml:"timeout"`
	// MaxAttempts is the number of tries (default 5) with exponential backoff and full
	// jitter between BackoffMin (default 1s) and BackoffMax (default 1m).
	MaxAttempts int                `yaml:"maxAttempts"`
	BackoffMin  lifecycle.Duration `yaml:"backoffMin"`
	BackoffMax  lifecycle.Duration `yaml:"backoffMax"`
	Filter      Filter             `yaml:"filter"`
}

// ExecConfig is one command run per event, with the event JSON on stdin.
type ExecConfig struct {
	Name    string   `yaml:"name"`
	Command []string `yaml:"command"`
	// Timeout kills the command (default 30s).
	Timeout lifecycle.Duration `yaml:"timeout"`
	Filter  Filter             `yaml:"filter"`
}

// Filter selects what a sink receives. Empty lists match everything. Flags are globs
// (path.Match: *, ?, [a-z]) on the flag key. A change passes when its kind and its flag
// match; an event with no changes (a guard trip naming no flag) passes when its type's
// kind is allowed and Flags is empty.
type Filter struct {
	Flags []string `yaml:"flags"`
	Kinds []Kind   `yaml:"kinds"`
}

func (f Filter) validate(field string) error {
	for i, g := range f.Flags {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("%s.flags[%d]: bad glob %q: %w", field, i, g, err)
		}
	}
	for i, k := range f.Kinds {
		switch k {
		case KindAdded, KindRemoved, KindChanged, KindGuard, KindCleanup, KindRejected, KindExpiry:
		default:
			return fmt.Errorf("%s.kinds[%d]: unknown kind %q (want added, removed, changed, guard, cleanup, rejected or expiry)", field, i, k)
		}
	}
	return nil
}

func (f Filter) kindOK(k Kind) bool {
	if len(f.Kinds) == 0 {
		return true
	}
	for _, x := range f.Kinds {
		if x == k {
			return true
		}
	}
	return false
}

func (f Filter) flagOK(key string) bool {
	if len(f.Flags) == 0 {
		return true
	}
	for _, g := range f.Flags {
		if ok, _ := path.Match(g, key); ok {
			return true
		}
	}
	return false
}

// Apply returns ev with only the changes f selects, and whether anything is left to send.
func (f Filter) Apply(ev Event) (Event, bool) {
	if len(ev.Changes) == 0 {
		k := map[Type]Kind{TypeGuard: KindGuard, TypeGuardRelease: KindGuard, TypeCleanup: KindCleanup}[ev.Type]
		return ev, k != "" && f.kindOK(k) && len(f.Flags) == 0
	}
	kept := make([]Change, 0, len(ev.Changes))
	for _, c := range ev.Changes {
		if f.kindOK(c.Kind) && f.flagOK(c.Flag) {
			kept = append(kept, c)
		}
	}
	ev.Changes = kept
	return ev, len(kept) > 0
}

// Validate checks every sink; errors name the field under prefix (e.g. "notify").
func (c Config) Validate(prefix string) error {
	if c.QueueSize < 0 {
		return fmt.Errorf("%s.queueSize: must not be negative", prefix)
	}
	names := map[string]bool{}
	checkName := func(field, name string) error {
		if name == "" {
			return fmt.Errorf("%s.name: required", field)
		}
		if names[name] {
			return fmt.Errorf("%s.name: %q used twice", field, name)
		}
		names[name] = true
		return nil
	}
	for i, w := range c.Webhooks {
		field := fmt.Sprintf("%s.webhooks[%d]", prefix, i)
		if err := checkName(field, w.Name); err != nil {
			return err
		}
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s.url: must be an http(s) URL", field)
		}
		if w.Format != "" && w.Format != "json" && w.Format != "slack" {
			return fmt.Errorf("%s.format: %q (want json or slack)", field, w.Format)
		}
		if w.MaxAttempts < 0 || w.Timeout < 0 || w.BackoffMin < 0 || w.BackoffMax < 0 {
			return fmt.Errorf("%s: maxAttempts, timeout and backoff must not be negative", field)
		}
		if err := w.Filter.validate(field + ".filter"); err != nil {
			return err
		}
	}
	for i, e := range c.Exec {
		field := fmt.Sprintf("%s.exec[%d]", prefix, i)
		if err := checkName(field, e.Name); err != nil {
			return err
		}
		if len(e.Command) == 0 || e.Command[0] == "" {
			return fmt.Errorf("%s.command: required (a list: program and arguments)", field)
		}
		if e.Timeout < 0 {
			return fmt.Errorf("%s.timeout: must not be negative", field)
		}
		if err := e.Filter.validate(field + ".filter"); err != nil {
			return err
		}
	}
	return nil
}

func durOr(d lifecycle.Duration, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return time.Duration(d)
}
