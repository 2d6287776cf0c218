package daemon

import (
	"context"
	"log/slog"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flagsync/flagsync/sources"
	"github.com/flagsync/flagsync/sources/consul"
	"github.com/flagsync/flagsync/sources/env"
	"github.com/flagsync/flagsync/sources/file"
	"github.com/flagsync/flagsync/sources/ssm"
)

// SourceDeps is what a source constructor may take from the daemon.
type SourceDeps struct {
	Logger  *slog.Logger
	Environ func() []string // the process environment (os.Environ unless a test injects one)
	// APICall counts one remote API call of source (flagsync_source_api_calls_total);
	// never nil.
	APICall func(source, operation string)
	// WatchDebounce is the source's effective watchDebounce: a file source reads only
	// files that have been quiet that long.
	WatchDebounce time.Duration
}

// forSource is deps for the source of entry sc, logging to l.
func (deps SourceDeps) forSource(sc SourceConfig, l *slog.Logger) SourceDeps {
	deps = deps.with(l)
	deps.WatchDebounce = sc.WatchDebounce
	return deps
}

// SourceFactory builds one source from its configuration entry. node is the whole
// sources[i] mapping; decode it with DecodeSourceConfig, which rejects unknown keys.
// Errors name the key relative to the entry ("path: required"); the daemon prefixes
// "sources[i].".
type SourceFactory func(name string, node *yaml.Node, deps SourceDeps) (sources.Source, error)

// sourceTypes maps a source `type:` to its constructor. Adding a source type is one
// entry here.
var sourceTypes = map[string]SourceFactory{
	"file": func(name string, node *yaml.Node, deps SourceDeps) (sources.Source, error) {
		var c file.Config
		if err := DecodeSourceConfig(node, &c); err != nil {
			return nil, err
		}
		return file.New(name, c, file.Options{Quiet: deps.WatchDebounce})
	},
	"env": func(name string, node *yaml.Node, deps SourceDeps) (sources.Source, error) {
		var c env.Config
		if err := DecodeSourceConfig(node, &c); err != nil {
			return nil, err
		}
		return env.New(name, c, deps.Environ), nil
	},
	"ssm": func(name string, node *yaml.Node, deps SourceDeps) (sources.Source, error) {
		var c ssm.Config
		if err := DecodeSourceConfig(node, &c); err != nil {
			return nil, err
		}
		return ssm.New(context.Background(), name, c, ssm.Options{Logger: deps.Logger,
			OnAPICall: func(op string) { deps.APICall(name, op) }})
	},
	"consul": func(name string, node *yaml.Node, deps SourceDeps) (sources.Source, error) {
		var c consul.Config
		if err := DecodeSourceConfig(node, &c); err != nil {
			return nil, err
		}
		return consul.New(name, c, consul.Options{Logger: deps.Logger})
	},
}

// SourceTypes lists the known source types, sorted.
func SourceTypes() []string {
	out := make([]string, 0, len(sourceTypes))
	for t := range sourceTypes {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
