// Package env is the flagsync source for environment variables: the quickest way for
// ops to flip a flag on one host (FLAGSYNC_FLAG_BETA_MODE=true) while its variants,
// targeting and owner stay in git.
package env

import (
	"context"
	"os"
	"sort"
	"strings"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/sources"
)

// DefaultPrefix is the variable prefix used when none is configured.
const DefaultPrefix = "FLAGSYNC_FLAG_"

// Config is the type-specific configuration of an env source.
type Config struct {
	// Prefix selects the variables; the rest of the name, lower-cased, is the flag key.
	Prefix string `yaml:"prefix"`
}

// Source reads flags from environment variables.
type Source struct {
	name    string
	prefix  string
	environ func() []string
}

// New returns an env source reading environ (os.Environ when nil).
func New(name string, c Config, environ func() []string) *Source {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if environ == nil {
		environ = os.Environ
	}
	return &Source{name: name, prefix: c.Prefix, environ: environ}
}

// Name implements sources.Source.
func (s *Source) Name() string { return s.name }

// Fetch implements sources.Source. Each variable is parsed with sources.ParseValue: a
// bare value or patch becomes an overlay, a JSON/YAML mapping with variants a full
// definition. A variable that does not parse is a per-flag problem naming the
// variable; its value is never repeated because environment variables often carry
// secrets.
func (s *Source) Fetch(ctx context.Context) (*sources.Result, error) {
	res := &sources.Result{
		Definitions: map[string]*flagset.Flag{},
		Overlays:    map[string]sources.Overlay{},
	}
	vars := s.environ()
	sort.Strings(vars)
	for _, kv := range vars {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, s.prefix) || len(name) == len(s.prefix) {
			continue
		}
		key := strings.ToLower(name[len(s.prefix):])
		origin := sources.Origin{Scheme: "env", Location: name}
		def, ov, err := sources.ParseValue(key, []byte(val), origin)
		if err != nil {
			res.Problems = append(res.Problems, sources.ValueProblem(key, origin, err, ""))
			continue
		}
		res.AddParsed(key, origin, def, ov)
	}
	return res, nil
}
