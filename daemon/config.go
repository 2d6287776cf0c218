package daemon

import (
	"os"
	"reflect"

	"time"

	"go.yaml.in/yaml/v3"

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
