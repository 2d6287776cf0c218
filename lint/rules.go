// Package lint checks flag files for mistakes the format allows but people regret:
// naming, missing ownership/expiry metadata, stale or endless expiries, variants
// nothing can select, targeting that names unknown variants, odd fractional weights
// and flags defined twice across sources. Each rule has an id and can be switched off
// or re-graded (.flagsync-lint.yaml, flagsync lint --disable/--enable).
package lint

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flagsync/flagsync/lifecycle"
)

// Severity grades a finding: errors fail CI, warnings do only past --max-warnings.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Rule is one check.
type Rule struct {
	ID          string
	Severity    Severity // default severity
	Description string
}

// Rule ids.
const (
	RuleParse                   = "parse"
	RuleInvalid                 = "invalid"
	RuleDefaultVariant          = "default-variant"
	RuleVariantTypes            = "variant-types"
	RuleKeyNaming               = "key-naming"
	RuleRequiredMetadata        = "required-metadata"
	RuleExpiryInvalid           = "expiry-invalid"
	RuleExpiryPast              = "expiry-past"
	RuleExpiryTooFar            = "expiry-too-far"
	RuleUnusedVariant           = "unused-variant"
	RuleTargetingUnknownVariant = "targeting-unknown-variant"
	RuleTargetingTypes          = "targeting-types"
	RuleFractionalWeights       = "fractional-weights"
	RuleCustomOperatorArgs      = "custom-operator-args"
	RuleDuplicateKey            = "duplicate-key"
)

// Rules lists every rule with its default severity.
func Rules() []Rule {
	return []Rule{
		{RuleParse, SeverityError, "the file is not valid JSON/YAML or not a flag document"},
		{RuleInvalid, SeverityError, "the flag set does not validate (any flagset problem not covered by a rule below)"},
		{RuleDefaultVariant, SeverityError, "defaultVariant names no variant"},
		{RuleVariantTypes, SeverityError, "variant values mix types (e.g. booleans and strings)"},
		{RuleKeyNaming, SeverityError, "flag key does not match the naming pattern (default: snake_case segments separated by /)"},
		{RuleRequiredMetadata, SeverityWarning, "a flag definition's metadata lacks a required field (default owner, description)"},
		{RuleExpiryInvalid, SeverityError, "metadata.expiresAt is not an RFC 3339 time"},
		{RuleExpiryPast, SeverityWarning, "metadata.expiresAt is in the past: remove the flag"},
		{RuleExpiryTooFar, SeverityWarning, "metadata.expiresAt is further away than the maximum lifetime (default 180d)"},
		{RuleUnusedVariant, SeverityWarning, "a flag with targeting has a variant that is neither the default nor returned by the targeting"},
		{RuleTargetingUnknownVariant, SeverityError, "targeting returns a variant name that does not exist"},
		{RuleTargetingTypes, SeverityError, "targeting returns a value that is not a variant name (number, boolean, object)"},
		{RuleFractionalWeights, SeverityWarning, "fractional weights are not whole percentages summing to 100 (or an even split: all omitted or all equal)"},
		{RuleCustomOperatorArgs, SeverityError, "a flagd operator (fractional, sem_ver, starts_with, ends_with) has arguments it cannot use, so it always evaluates to null (the default variant)"},
		{RuleDuplicateKey, SeverityError, "the same flag key is defined in more than one of the linted files"},
	}
}

// Config tunes the rules; read from .flagsync-lint.yaml:
//
//	disable: [unused-variant]
//	severity: {key-naming: error}
//	keyPattern: '^[a-z][a-z0-9]*(_[a-z0-9]+)*(/[a-z][a-z0-9]*(_[a-z0-9]+)*)*$'
//	maxLifetime: 180d
//	requiredMetadata: [owner, description, expiresAt]
type Config struct {
	Disable          []string            `yaml:"disable"`
	Enable           []string            `yaml:"enable"`
	Severity         map[string]Severity `yaml:"severity"`
	KeyPattern       string              `yaml:"keyPattern"`
	MaxLifetime      lifecycle.Duration  `yaml:"maxLifetime"`
	RequiredMetadata []string            `yaml:"requiredMetadata"`
}

// Defaults.
const (
	// DefaultKeyPattern is snake_case segments separated by "/": nested keys such as
	// payments/new_psp are how SSM and Consul sources name flags in folders.
	DefaultKeyPattern  = `^[a-z][a-z0-9]*(_[a-z0-9]+)*(/[a-z][a-z0-9]*(_[a-z0-9]+)*)*$`
	DefaultMaxLifetime = 180 * 24 * time.Hour
)

// DefaultRequiredMetadata are the metadata fields every flag definition should carry.
// expiresAt is not among them: kill switches and operational flags are meant to stay,
// so a team whose flags are all temporary adds it in .flagsync-lint.yaml.
func DefaultRequiredMetadata() []string { return []string{"owner", "description"} }

// ParseConfig reads a .flagsync-lint.yaml.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("lint config: %w", err)
	}
	return c, nil
}

// compiled is a Config checked and resolved against the rule table.
type compiled struct {
	severity    map[string]Severity // enabled rules only
	keyPattern  *regexp.Regexp
	maxLifetime time.Duration
	required    []string
}

func (c Config) compile() (*compiled, error) {
	out := &compiled{severity: map[string]Severity{}, maxLifetime: DefaultMaxLifetime, required: c.RequiredMetadata}
	known := map[string]bool{}
	for _, r := range Rules() {
		known[r.ID] = true
		out.severity[r.ID] = r.Severity
	}
	check := func(field, id string) error {
		if !known[id] {
			return fmt.Errorf("%s: unknown rule %q (known: %s)", field, id, strings.Join(ruleIDs(), ", "))
		}
		return nil
	}
	for id, sev := range c.Severity {
		if err := check("severity", id); err != nil {
			return nil, err
		}
		if sev != SeverityError && sev != SeverityWarning {
			return nil, fmt.Errorf("severity.%s: %q (want error or warning)", id, sev)
		}
		out.severity[id] = sev
	}
	for _, id := range c.Disable {
		if err := check("disable", id); err != nil {
			return nil, err
		}
		if id == RuleParse {
			return nil, fmt.Errorf("disable: rule %q cannot be disabled", id)
		}
		delete(out.severity, id)
	}
	for _, id := range c.Enable {
		if err := check("enable", id); err != nil {
			return nil, err
		}
		if _, on := out.severity[id]; !on {
			out.severity[id] = defaultSeverity(id)
			if s, ok := c.Severity[id]; ok {
				out.severity[id] = s
			}
		}
	}
	pat := c.KeyPattern
	if pat == "" {
		pat = DefaultKeyPattern
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return nil, fmt.Errorf("keyPattern: %w", err)
	}
	out.keyPattern = re
	if c.MaxLifetime < 0 {
		return nil, fmt.Errorf("maxLifetime: must not be negative")
	}
	if c.MaxLifetime > 0 {
		out.maxLifetime = time.Duration(c.MaxLifetime)
	}
	if out.required == nil {
		out.required = DefaultRequiredMetadata()
	}
	return out, nil
}

func defaultSeverity(id string) Severity {
	for _, r := range Rules() {
		if r.ID == id {
			return r.Severity
		}
	}
	return SeverityError
}

func ruleIDs() []string {
	var ids []string
	for _, r := range Rules() {
		ids = append(ids, r.ID)
	}
	sort.Strings(ids)
	return ids
}
