// Package lifecycle is the expiry policy: it finds flags past (or close to) their
// metadata.expiresAt and decides what happens to them: report only, publish them
// DISABLED, drop them from the snapshot, or delete them from the store they came from
// (the daemon carries deletions out through sources.Deleter, with the typed origin the
// merge recorded). It is pure logic with the clock passed in, so the daemon can run it
// at every sync and on its cleanup schedule, and tests can drive it with any time.
package lifecycle

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"
)

// ActionKind is what happens to an expired flag.
type ActionKind string

const (
	// ActionReport only lists the flag (logs, `flagsync stale`, notifications).
	ActionReport ActionKind = "report"
	// ActionDisable publishes the flag with state DISABLED, so apps use their code defaults.
	ActionDisable ActionKind = "disable"
	// ActionRemove drops the flag from the snapshot (apps get FLAG_NOT_FOUND → code default).
	ActionRemove ActionKind = "remove"
	// ActionDeleteFromSource drops the flag from the snapshot and deletes the parameter/key
	// from the store it came from (SSM, Consul). Never for flags defined in files.
	ActionDeleteFromSource ActionKind = "deleteFromSource"
)

// Valid tells whether k is a known action.
func (k ActionKind) Valid() bool {
	switch k {
	case ActionReport, ActionDisable, ActionRemove, ActionDeleteFromSource:
		return true
	}
	return false
}

// Defaults of the cleanup: section.
const (
	DefaultSchedule   = "@daily"
	DefaultWarnBefore = 14 * 24 * time.Hour
)

// ScheduleParser reads cron schedules: five standard fields, an optional leading
// seconds field, and descriptors (@daily, @every 6h). The daemon's top-level schedule
// uses it too, so both keys accept the same forms.
var ScheduleParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Config is the daemon's `cleanup:` section.
//
//	cleanup:
//	  schedule: "@daily"        # cron (5 or 6 fields, or @daily/@hourly/@every 6h)
//	  warnBefore: 14d           # "expiring soon" window; Go duration or Nd
//	  grace: 2d                 # how long after expiresAt before the action applies
//	  action: disable           # one action for every environment, or per environment:
//	  # action: {default: report, staging: remove, prod: disable}
//	  dryRun: true              # only with deleteFromSource: log what it would delete
type Config struct {
	Schedule   string       `yaml:"schedule"`
	WarnBefore Duration     `yaml:"warnBefore"`
	Grace      Duration     `yaml:"grace"`
	Action     ActionPolicy `yaml:"action"`
	// DryRun applies to deleteFromSource only (Validate refuses it when no environment
	// uses that action); nil means the default, true.
	DryRun *bool `yaml:"dryRun"`

	warnSet bool
}

// UnmarshalYAML keeps track of whether warnBefore was given, so an explicit 0 is kept.
func (c *Config) UnmarshalYAML(node *yaml.Node) error {
	type plain Config
	var p plain
	if err := node.Decode(&p); err != nil {
		return err
	}
	*c = Config(p)
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == "warnBefore" {
			c.warnSet = true
		}
	}
	return nil
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.Schedule == "" {
		c.Schedule = DefaultSchedule
	}
	if !c.warnSet && c.WarnBefore == 0 {
		c.WarnBefore = Duration(DefaultWarnBefore)
	}
	return c // DryRun stays nil when unset: IsDryRun reads nil as true, and Validate
	// refuses only a dryRun someone wrote.
}

// Validate checks the schedule, the durations and the actions; errors name the field
// under prefix (e.g. "cleanup").
func (c Config) Validate(prefix string) error {
	if c.Schedule != "" {
		if _, err := ScheduleParser.Parse(c.Schedule); err != nil {
			return fmt.Errorf("%s.schedule: %w", prefix, err)
		}
	}
	if c.WarnBefore < 0 {
		return fmt.Errorf("%s.warnBefore: must not be negative", prefix)
	}
	if c.Grace < 0 {
		return fmt.Errorf("%s.grace: must not be negative", prefix)
	}
	if err := c.Action.validate(prefix + ".action"); err != nil {
		return err
	}
	if c.DryRun != nil && !c.Action.uses(ActionDeleteFromSource) {
		// A switch that changes nothing misleads: "dryRun: true" next to remove reads as
		// if the removal were only rehearsed.
		return fmt.Errorf("%s.dryRun: only applies to action deleteFromSource, which no environment uses (report, disable and remove have nothing to rehearse); remove the key", prefix)
	}
	return nil
}

// IsDryRun is the effective dryRun (default true).
func (c Config) IsDryRun() bool { return c.DryRun == nil || *c.DryRun }

// ActionFor is the action for environment env (see ActionPolicy).
func (c Config) ActionFor(env string) ActionKind { return c.Action.For(env) }

// ActionPolicy is either one action for every environment (`action: disable`) or a map
// environment → action with an optional "default" entry (`action: {default: report,
// prod: disable}`). The environment is the daemon's top-level `environment:` value.
type ActionPolicy struct {
	Default ActionKind
	PerEnv  map[string]ActionKind
}

// For returns the action for env: its entry, else the default, else report.
func (p ActionPolicy) For(env string) ActionKind {
	if a, ok := p.PerEnv[env]; ok {
		return a
	}
	if p.Default != "" {
		return p.Default
	}
	return ActionReport
}

// UnmarshalYAML accepts a scalar or a mapping.
func (p *ActionPolicy) UnmarshalYAML(node *yaml.Node) error {
	switch node.Kind {
	case yaml.ScalarNode:
		p.Default = ActionKind(node.Value)
		return nil
	case yaml.MappingNode:
		var m map[string]string
		if err := node.Decode(&m); err != nil {
			return err
		}
		p.PerEnv = map[string]ActionKind{}
		for env, a := range m {
			if env == "default" {
				p.Default = ActionKind(a)
				continue
			}
			p.PerEnv[env] = ActionKind(a)
		}
		return nil
	}
	return fmt.Errorf("line %d: action must be an action name or a map environment → action", node.Line)
}

// uses tells whether k is the action of the default or of some environment.
func (p ActionPolicy) uses(k ActionKind) bool {
	if p.Default == k {
		return true
	}
	for _, a := range p.PerEnv {
		if a == k {
			return true
		}
	}
	return false
}

func (p ActionPolicy) validate(field string) error {
	if p.Default != "" && !p.Default.Valid() {
		return fmt.Errorf("%s: unknown action %q (want report, disable, remove or deleteFromSource)", field, p.Default)
	}
	envs := make([]string, 0, len(p.PerEnv))
	for env := range p.PerEnv {
		envs = append(envs, env)
	}
	sort.Strings(envs)
	for _, env := range envs {
		if a := p.PerEnv[env]; !a.Valid() {
			return fmt.Errorf("%s.%s: unknown action %q (want report, disable, remove or deleteFromSource)", field, env, a)
		}
	}
	return nil
}

// Duration is a time.Duration that also reads whole days: "14d", "1d12h", "36h", "90m".
type Duration time.Duration

// UnmarshalYAML parses a Go duration or a day count.
func (d *Duration) UnmarshalYAML(node *yaml.Node) error {
	v, err := ParseDuration(node.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", node.Line, err)
	}
	*d = Duration(v)
	return nil
}

// String formats like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// ParseDuration parses a Go duration ("36h", "90m") optionally preceded by whole days
// ("14d", "1d12h"). A bare "0" is zero.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	neg := false
	rest := s
	if rest[0] == '-' {
		neg, rest = true, rest[1:]
	}
	var total time.Duration
	if i := strings.IndexByte(rest, 'd'); i >= 0 {
		days, err := strconv.ParseInt(rest[:i], 10, 32)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("invalid duration %q: days must be a whole number (e.g. 14d)", s)
		}
		total = time.Duration(days) * 24 * time.Hour
		rest = rest[i+1:]
	}
	if rest != "" {
		v, err := time.ParseDuration(rest)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("invalid duration %q: want e.g. 14d, 36h, 1d12h", s)
		}
		total += v
	}
	if neg {
		total = -total
	}
	return total, nil
}
