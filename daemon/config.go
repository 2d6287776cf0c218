package daemon

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"

	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flagsync/flagsync/internal/yamlconf"
	"github.com/flagsync/flagsync/lifecycle"
	"github.com/flagsync/flagsync/notify"
)

// Defaults for optional configuration keys (documented in docs/CONFIG.md).
const (
	DefaultSchedule           = "@every 30s"
	DefaultWatchDebounce      = 100 * time.Millisecond
	DefaultSourceTimeout      = 10 * time.Second
	DefaultListen             = "127.0.0.1:8080"
	DefaultMaxRemovedFraction = 0.5
	DefaultBaselineWindow     = 24 * time.Hour
	DefaultFileMode           = 0o644
)

// Config is a validated flagsync configuration.
type Config struct {
	FlagSetID     string         `yaml:"flagSetId"`
	Sources       []SourceConfig `yaml:"-"`
	Schedule      string         `yaml:"schedule"`
	WatchDebounce time.Duration  `yaml:"watchDebounce"`
	Outputs       OutputsConfig  `yaml:"outputs"`
	HTTP          HTTPConfig     `yaml:"http"`
	// FlagdSync serves flagd's sync protocol (flagdsync/, docs/CONFIG.md "flagdSync").
	FlagdSync FlagdSyncConfig `yaml:"flagdSync"`
	Guards    GuardsConfig    `yaml:"guards"`
	Log       LogConfig       `yaml:"log"`
	// HA is leader election among replicas (daemon/ha.go, docs/CONFIG.md "ha").
	HA HAConfig `yaml:"ha"`
	// Environment names this deployment (e.g. prod); cleanup.action may differ per
	// environment and notifications carry it.
	Environment string `yaml:"environment"`
	// Cleanup is the expiry handling (docs/LIFECYCLE.md); nil means report only.
	Cleanup *lifecycle.Config `yaml:"cleanup"`
	// Notify lists the change-alert sinks (webhooks, commands).
	Notify notify.Config `yaml:"notify"`

	// Path is the file the configuration was read from ("" when parsed from bytes).
	Path string `yaml:"-"`
	// sourcesOnly marks a configuration read by LoadSourcesConfig: it has no outputs.
	sourcesOnly bool

	// watchDebounceSet tells the top-level watchDebounce was given, so it overrides
	// the per-type defaults of sources that set none.
	watchDebounceSet bool
}

// SourceConfig is one entry of sources:. Node is the whole entry after ${ENV}
// expansion; the source type's factory decodes its own keys from it.
type SourceConfig struct {
	Name    string
	Type    string
	Timeout time.Duration
	// WatchDebounce is the effective quiet time after this source's change signal
	// before a sync starts: the entry's watchDebounce, else the top-level one if set,
	// else the type's default (file 100ms, consul 0, others DefaultWatchDebounce).
	WatchDebounce time.Duration
	Node          *yaml.Node
	index         int

	watchDebounce *time.Duration // as given in the entry
}

// OutputsConfig lists where snapshots are published.
type OutputsConfig struct {
	File  *FileOutputConfig  `yaml:"file"`
	Redis *RedisOutputConfig `yaml:"redis"`
}

// FileOutputConfig is the local JSON file output.
type FileOutputConfig struct {
	Path string `yaml:"path"`
	Mode string `yaml:"mode"`

	mode os.FileMode
}

// FileMode is the parsed mode (default 0644).
func (f *FileOutputConfig) FileMode() os.FileMode { return f.mode }

// RedisOutputConfig is the Redis output: one server (url), a master found through
// Sentinel (sentinel), or a Redis Cluster (cluster); exactly one of the three.
type RedisOutputConfig struct {
	URL      string               `yaml:"url"`
	Sentinel *RedisSentinelConfig `yaml:"sentinel"`
	Cluster  *RedisClusterConfig  `yaml:"cluster"`
	// Username, Password and DB are the data servers' credentials and database with
	// sentinel or cluster (a url carries its own).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	DB       int    `yaml:"db"`
	Prefix   string `yaml:"prefix"`
	// LegacyKeys also writes the key names without hash tag (transport.LegacyKeysFor)
	// for readers not yet upgraded; default on for url and sentinel, off for cluster.
	LegacyKeys *bool          `yaml:"legacyKeys"`
	TLS        RedisTLSConfig `yaml:"tls"`
}

// RedisSentinelConfig finds the master through Redis Sentinel.
type RedisSentinelConfig struct {
	MasterName string   `yaml:"masterName"`
	Addresses  []string `yaml:"addresses"` // host:port of the sentinels
	// Username and Password authenticate to the sentinels (requirepass of the
	// sentinels themselves), not to the data servers.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// RedisClusterConfig is a Redis Cluster reached through seed addresses.
type RedisClusterConfig struct {
	Addresses []string `yaml:"addresses"` // host:port of some of the cluster's nodes
}

// Same tells whether two Redis output configurations are equal (the struct holds
// slices, so it cannot be compared with ==).
func (r *RedisOutputConfig) Same(o *RedisOutputConfig) bool { return reflect.DeepEqual(r, o) }

// WritesLegacyKeys tells whether the old key names are written too (after validation).
func (r *RedisOutputConfig) WritesLegacyKeys() bool { return r.LegacyKeys != nil && *r.LegacyKeys }

// RedisTLSConfig adjusts certificate checks of a rediss:// URL. It is a value of
// comparable fields so that configurations compare with == across reloads.
type RedisTLSConfig struct {
	// Enabled turns TLS on with sentinel or cluster (a url says so by rediss://).
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of CAs trusted instead of the system roots (private CAs).
	CAFile string `yaml:"caFile"`
	// ServerName is the name checked in the certificate, when it differs from the
	// URL's host (e.g. connecting by IP to a server whose certificate names a host).
	ServerName string `yaml:"serverName"`
	// InsecureSkipVerify turns certificate checks off (encryption only; test setups).
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
}

// HTTPConfig is the status/metrics listener (daemon/httpconfig.go, docs/SECURITY.md).
type HTTPConfig struct {
	Listen string `yaml:"listen"`
	// OFREP is the OpenFeature Remote Evaluation endpoint under /ofrep/ (daemon/ha.go).
	OFREP OFREPConfig `yaml:"ofrep"`
	// Auth is who may call which route.
	Auth AuthConfig `yaml:"auth"`
	// AllowedHosts are the Host names admin routes accept (default: loopback names).
	AllowedHosts []string `yaml:"allowedHosts"`
	// TLS serves HTTPS with a certificate and key read again when they change.
	TLS ListenTLSConfig `yaml:"tls"`
	// Limits are the server's timeouts and size limits.
	Limits HTTPLimits `yaml:"limits"`

	auth *authPolicy // the tokens, read by ParseConfig
}

// GuardsConfig are the safety checks before a publish (docs/CONFIG.md "guards").
type GuardsConfig struct {
	MaxRemovedFraction *float64 `yaml:"maxRemovedFraction"`
	AllowEmpty         bool     `yaml:"allowEmpty"`
	// BaselineWindow is how long a published removal still counts against its
	// source's (and the whole set's) baseline, so deletions one at a time add up;
	// 0 means DefaultBaselineWindow.
	BaselineWindow time.Duration `yaml:"baselineWindow"`
	// StateFile keeps the guard state (accepted keys, baselines, holds) across
	// restarts and `flagsync sync --once` runs; see Config.StatePath for the default.
	StateFile string `yaml:"stateFile"`
}

// Window is baselineWindow or its default.
func (g GuardsConfig) Window() time.Duration {
	if g.BaselineWindow <= 0 {
		return DefaultBaselineWindow
	}
	return g.BaselineWindow
}

// RemovedFraction is maxRemovedFraction or its default.
func (g GuardsConfig) RemovedFraction() float64 {
	if g.MaxRemovedFraction == nil {
		return DefaultMaxRemovedFraction
	}
	return *g.MaxRemovedFraction
}

// LogConfig selects the log level and format.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// CronParser is the schedule parser: standard five fields, an optional leading
// seconds field, and descriptors such as @every 30s.
// It is lifecycle's, so cleanup.schedule accepts exactly the same forms.
var cronParser = lifecycle.ScheduleParser

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

func (c *Config) validate() error {
	if c.FlagSetID == "" {
		return errors.New("flagSetId: required")
	}
	if len(c.Sources) == 0 {
		return errors.New("sources: at least one source is required")
	}
	if c.Schedule == "" {
		c.Schedule = DefaultSchedule
	}
	if _, err := cronParser.Parse(c.Schedule); err != nil {
		return fmt.Errorf("schedule: %v", err)
	}
	c.watchDebounceSet = c.WatchDebounce != 0
	if c.WatchDebounce == 0 {
		c.WatchDebounce = DefaultWatchDebounce
	} else if c.WatchDebounce < 0 {
		return errors.New("watchDebounce: must be positive")
	}
	for i := range c.Sources {
		c.Sources[i].WatchDebounce = c.sourceDebounce(c.Sources[i])
	}
	if err := c.validateLifecycle(); err != nil {
		return err
	}
	if c.Outputs.File == nil && c.Outputs.Redis == nil && !c.sourcesOnly {
		return errors.New("outputs: at least one of outputs.file and outputs.redis is required")
	}
	if f := c.Outputs.File; f != nil {
		if f.Path == "" {
			return errors.New("outputs.file.path: required")
		}
		f.mode = DefaultFileMode
		if f.Mode != "" {
			m, err := strconv.ParseUint(strings.TrimPrefix(f.Mode, "0o"), 8, 32)
			if err != nil || m > 0o777 {
				return fmt.Errorf("outputs.file.mode: %q is not an octal file mode like 0644", f.Mode)
			}
			f.mode = os.FileMode(m)
		}
	}
	if r := c.Outputs.Redis; r != nil {
		if err := r.validate(c.FlagSetID); err != nil {
			return err
		}
	}
	if err := c.validateScale(); err != nil {
		return err
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		return fmt.Errorf("http.listen: %q is not host:port", c.HTTP.Listen)
	}
	if err := c.HTTP.validate(); err != nil {
		return err
	}
	if err := c.FlagdSync.validate(); err != nil {
		return err
	}
	if f := c.Guards.RemovedFraction(); f < 0 || f > 1 {
		return fmt.Errorf("guards.maxRemovedFraction: must be between 0 and 1, got %v", f)
	}
	if c.Guards.BaselineWindow < 0 {
		return fmt.Errorf("guards.baselineWindow: must not be negative, got %s", c.Guards.BaselineWindow)
	}
	switch strings.ToLower(c.Log.Level) {
	case "":
		c.Log.Level = "info"
	case "debug", "info", "warn", "error":
		c.Log.Level = strings.ToLower(c.Log.Level)
	default:
		return fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch strings.ToLower(c.Log.Format) {
	case "":
		c.Log.Format = "text"
	case "text", "json":
		c.Log.Format = strings.ToLower(c.Log.Format)
	default:
		return fmt.Errorf("log.format: %q is not one of text, json", c.Log.Format)
	}
	return nil
}

// validate checks the tls keys against the URL scheme and that caFile holds a CA,
// so a bad file is reported when the configuration loads, not at the first publish.
func (t RedisTLSConfig) validate(scheme string) error {
	if t == (RedisTLSConfig{}) || t == (RedisTLSConfig{Enabled: true}) {
		return nil
	}
	if scheme != "rediss" {
		return errors.New("outputs.redis.tls: needs a rediss:// url, or tls.enabled: true with sentinel or cluster (redis:// and unix:// do not use TLS)")
	}
	if t.InsecureSkipVerify && t.CAFile != "" {
		return errors.New("outputs.redis.tls.insecureSkipVerify: true turns certificate checks off, so caFile would be ignored; set one or the other")
	}
	if t.CAFile != "" {
		if _, err := loadCAPool(t.CAFile); err != nil {
			return fmt.Errorf("outputs.redis.tls.caFile: %w", err)
		}
	}
	return nil
}

// loadCAPool reads a PEM bundle of CA certificates.
func loadCAPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// RedactedRedisURL is the redis URL with its password replaced, for logs and status.
func RedactedRedisURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable redis url)"
	}
	return u.Redacted()
}

// DecodeSourceConfig decodes a source entry's type-specific keys into the struct v
// points to (yaml tags name the keys), rejecting unknown keys. The common keys name,
// type and timeout are skipped. Errors name the key relative to the entry
// ("path: ..."); the daemon prefixes "sources[i].".
func DecodeSourceConfig(node *yaml.Node, v any) error {
	return yamlconf.Decode(node, v, "", "name", "type", "timeout", "watchDebounce")
}
