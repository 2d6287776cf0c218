// Reading a configuration: YAML, ${ENV} expansion, strict decoding, the sources list.

package daemon

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flagsync/flagsync/internal/yamlconf"
)

// LoadConfig reads and validates the configuration file at path; lookupEnv expands
// ${VAR} references (os.LookupEnv when nil).
func LoadConfig(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	return loadConfig(path, lookupEnv, loadAll)
}

// LoadConfigNoHTTP is LoadConfig for a command that serves no HTTP (`sync --once`,
// `stale`): the http.auth tokens are not read, so the operator's release runs where
// the configuration is at hand but the daemon's token variables or files are not.
func LoadConfigNoHTTP(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	return loadConfig(path, lookupEnv, loadNoHTTP)
}

// LoadSourcesConfig is LoadConfig for a command that only reads the sources once
// (`stale --config`, `lint --config`): the sections it does not use (outputs, notify,
// http, ha, cleanup) are left out before ${VAR} expansion, so their variables — a
// webhook secret, a Redis password — need not be set where the operator runs it, and
// nothing is published, notified, elected or cleaned up; guards.stateFile is ignored,
// so the daemon's guard state is never written.
func LoadSourcesConfig(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	return loadConfig(path, lookupEnv, loadSourcesOnly)
}

// loadMode is how much of the configuration a command reads.
type loadMode int

const (
	loadAll         loadMode = iota // the daemon
	loadNoHTTP                      // sync --once: everything but the http.auth tokens
	loadSourcesOnly                 // stale/lint --config: see LoadSourcesConfig
)

// unreadBySourceReaders are the top-level sections LoadSourcesConfig leaves out.
var unreadBySourceReaders = []string{"outputs", "notify", "http", "ha", "cleanup"}

func loadConfig(path string, lookupEnv func(string) (string, bool), mode loadMode) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := parseConfig(data, lookupEnv, mode)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c.Path = path
	return c, nil
}

// ParseConfig parses and validates a configuration. Errors name the key path, e.g.
// "sources[2].path: required".
func ParseConfig(data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	return parseConfig(data, lookupEnv, loadAll)
}

// parseConfig is ParseConfig reading what mode says.
func parseConfig(data []byte, lookupEnv func(string) (string, bool), mode loadMode) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil, errors.New("empty configuration")
	}
	top := root.Content[0]
	if mode == loadSourcesOnly && top.Kind == yaml.MappingNode {
		kept := *top
		kept.Content = nil
		for i := 0; i+1 < len(top.Content); i += 2 {
			if !slices.Contains(unreadBySourceReaders, top.Content[i].Value) {
				kept.Content = append(kept.Content, top.Content[i], top.Content[i+1])
			}
		}
		top = &kept
	}
	// Expansion happens on parsed scalars, never on the text, so a variable's value
	// can never inject YAML structure.
	if err := yamlconf.Expand(top, lookupEnv); err != nil {
		return nil, err
	}
	c := Config{sourcesOnly: mode == loadSourcesOnly}
	if err := yamlconf.Decode(top, &c, "", "sources"); err != nil {
		return nil, err
	}
	if src := yamlconf.Value(top, "sources"); src != nil {
		if err := c.decodeSources(src); err != nil {
			return nil, err
		}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if mode == loadSourcesOnly {
		// A one-shot read must never write the daemon's guard state: its forced sync
		// would release the daemon's holds and reset its baselines.
		c.Guards.StateFile = ""
	}
	if mode == loadAll {
		if err := c.HTTP.readAuth(lookupEnv); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

func (c *Config) decodeSources(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return errors.New("sources: must be a list")
	}
	names := map[string]int{}
	for i, item := range n.Content {
		p := fmt.Sprintf("sources[%d]", i)
		if item.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: must be a mapping with name and type", p)
		}
		sc := SourceConfig{Node: item, index: i, Timeout: DefaultSourceTimeout}
		if v := yamlconf.Value(item, "name"); v != nil {
			if err := v.Decode(&sc.Name); err != nil {
				return fmt.Errorf("%s.name: %s", p, yamlconf.ErrorText(err))
			}
		}
		if v := yamlconf.Value(item, "type"); v != nil {
			if err := v.Decode(&sc.Type); err != nil {
				return fmt.Errorf("%s.type: %s", p, yamlconf.ErrorText(err))
			}
		}
		if v := yamlconf.Value(item, "timeout"); v != nil {
			if err := v.Decode(&sc.Timeout); err != nil {
				return fmt.Errorf("%s.timeout: must be a duration like 10s: %s", p, yamlconf.ErrorText(err))
			}
			if sc.Timeout <= 0 {
				return fmt.Errorf("%s.timeout: must be positive", p)
			}
		}
		if v := yamlconf.Value(item, "watchDebounce"); v != nil {
			var wd time.Duration
			if err := v.Decode(&wd); err != nil {
				return fmt.Errorf("%s.watchDebounce: must be a duration like 0s or 100ms: %s", p, yamlconf.ErrorText(err))
			}
			if wd < 0 {
				return fmt.Errorf("%s.watchDebounce: must not be negative", p)
			}
			sc.watchDebounce = &wd
		}
		if sc.Name == "" {
			return fmt.Errorf("%s.name: required", p)
		}
		if j, dup := names[sc.Name]; dup {
			return fmt.Errorf("%s.name: %q is already the name of sources[%d]", p, sc.Name, j)
		}
		names[sc.Name] = i
		if sc.Type == "" {
			return fmt.Errorf("%s.type: required (one of %s)", p, strings.Join(SourceTypes(), ", "))
		}
		if _, ok := sourceTypes[sc.Type]; !ok {
			return fmt.Errorf("%s.type: unknown source type %q (one of %s)", p, sc.Type, strings.Join(SourceTypes(), ", "))
		}
		c.Sources = append(c.Sources, sc)
	}
	return nil
}

// DecodeSourceConfig decodes a source entry's type-specific keys into the struct v
// points to (yaml tags name the keys), rejecting unknown keys. The common keys name,
// type and timeout are skipped. Errors name the key relative to the entry
// ("path: ..."); the daemon prefixes "sources[i].".
func DecodeSourceConfig(node *yaml.Node, v any) error {
	return yamlconf.Decode(node, v, "", "name", "type", "timeout", "watchDebounce")
}
