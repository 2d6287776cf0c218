package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/flagsync/flagsync/ha"
	"github.com/flagsync/flagsync/sources/consul"
)

// HA backends (ha.backend).
const (
	HABackendAuto   = "auto"
	HABackendConsul = "consul"
	HABackendRedis  = "redis"
)

// HAConfig is leader election among the replicas of one flag set: only the leader
// publishes to Redis and runs cleanup deletions (docs/DEPLOY.md).
type HAConfig struct {
	Enabled bool `yaml:"enabled"`
	// Backend is auto (consul when a consul source is configured, else redis),
	// consul or redis.
	Backend string `yaml:"backend"`
	// TTL is the lease length (default ha.DefaultTTL); a crashed leader is replaced
	// about one TTL later (Redis) or 2×TTL + 1 s later (Consul).
	TTL time.Duration `yaml:"ttl"`
	// Key is the Consul lock key (default flagsync/<flagSetId>/leader). The Redis
	// elector's keys always sit next to the snapshot: <outputs.redis.prefix>:leader
	// and :fence, so that the fence it issues is the one the publish checks.
	Key string `yaml:"key"`
}

// OFREPConfig is the OFREP endpoint (docs/OFREP.md).
type OFREPConfig struct {
	Enabled             *bool    `yaml:"enabled"` // default true
	APIKeys             []string `yaml:"apiKeys"`
	BearerTokens        []string `yaml:"bearerTokens"`
	RequireTargetingKey bool     `yaml:"requireTargetingKey"`
	RateLimit           float64  `yaml:"rateLimit"`
	RateBurst           int      `yaml:"rateBurst"`
	// MaxEventStreams caps the change notification streams (GET /ofrep/v1/events)
	// open at once; 0 is ofrep.DefaultMaxStreams. Keep it below
	// http.limits.maxConnections: every stream holds a connection.
	MaxEventStreams int `yaml:"maxEventStreams"`
}

// On tells whether OFREP is served.
func (o OFREPConfig) On() bool { return o.Enabled == nil || *o.Enabled }

// validateScale checks and defaults the ha and http.ofrep keys.
func (c *Config) validateScale() error {
	o := &c.HTTP.OFREP
	for name, list := range map[string][]string{"apiKeys": o.APIKeys, "bearerTokens": o.BearerTokens} {
		for i, k := range list {
			// An unset ${VAR:-} would otherwise become a key that matches nothing
			// useful or, worse, an empty credential.
			if strings.TrimSpace(k) == "" {
				return fmt.Errorf("http.ofrep.%s[%d]: empty credential (is its environment variable empty?)", name, i)
			}
		}
	}
	if o.RateLimit < 0 {
		return fmt.Errorf("http.ofrep.rateLimit: must not be negative, got %v", o.RateLimit)
	}
	if o.RateBurst < 0 {
		return fmt.Errorf("http.ofrep.rateBurst: must not be negative, got %d", o.RateBurst)
	}
	if o.MaxEventStreams < 0 {
		return fmt.Errorf("http.ofrep.maxEventStreams: must not be negative, got %d", o.MaxEventStreams)
	}
	if o.RateBurst > 0 && o.RateLimit == 0 {
		return errors.New("http.ofrep.rateBurst: needs http.ofrep.rateLimit")
	}

	h := &c.HA
	switch h.Backend {
	case "":
		h.Backend = HABackendAuto
	case HABackendAuto, HABackendConsul, HABackendRedis:
	default:
		return fmt.Errorf("ha.backend: %q is not one of auto, consul, redis", h.Backend)
	}
	switch {
	case h.TTL == 0:
		h.TTL = ha.DefaultTTL
	case h.TTL < time.Second:
		return fmt.Errorf("ha.ttl: must be at least 1s, got %s", h.TTL)
	}
	if !h.Enabled {
		return nil
	}
	if c.Outputs.Redis == nil {
		return errors.New("ha.enabled: needs outputs.redis (only the Redis output is leader-only; without it every replica writes its own file and needs no election)")
	}
	if h.Backend == HABackendAuto {
		h.Backend = HABackendRedis
		if c.consulSource() != nil {
			h.Backend = HABackendConsul
		}
	}
	switch h.Backend {
	case HABackendConsul:
		if c.consulSource() == nil {
			return errors.New("ha.backend: consul needs a source of type consul (its address and token are used)")
		}
		if h.Key == "" {
			h.Key = "flagsync/" + c.FlagSetID + "/leader"
		}
	case HABackendRedis:
		if h.Key != "" {
			return errors.New("ha.key: only the consul backend uses it (the Redis lease is <outputs.redis.prefix>:leader)")
		}
	}
	return nil
}

// consulSource is the first source of type consul, or nil.
func (c *Config) consulSource() *SourceConfig {
	for i := range c.Sources {
		if c.Sources[i].Type == "consul" {
			return &c.Sources[i]
		}
	}
	return nil
}

// NewElector builds the leader elector cfg asks for (nil, nil when ha is off). It
// does no I/O; start it with Run. The returned close releases its client; call it
// after Run has returned. The elector should outlive config reloads, so that a
// reload never drops leadership.
func NewElector(cfg *Config, logger *slog.Logger) (ha.Elector, func(), error) {
	if !cfg.HA.Enabled {
		return nil, func() {}, nil
	}
	if logger == nil {
		logger = slog.Default()
	}
	switch cfg.HA.Backend {
	case HABackendConsul:
		sc := cfg.consulSource()
		var cc consul.Config
		if err := DecodeSourceConfig(sc.Node, &cc); err != nil {
			return nil, nil, fmt.Errorf("sources[%d].%w", sc.index, err)
		}
		client, err := consul.NewClient(cc)
		if err != nil {
			return nil, nil, fmt.Errorf("ha: consul client from source %s: %w", sc.Name, err)
		}
		el, err := ha.NewConsul(ha.ConsulConfig{Client: client, Key: cfg.HA.Key, Holder: holderName(),
			TTL: cfg.HA.TTL, Logger: logger})
		if err != nil {
			return nil, nil, err
		}
		return el, func() {}, nil
	default:
		client, err := newRedisClient(cfg.Outputs.Redis)
		if err != nil {
			return nil, nil, err
		}
		el, err := ha.NewRedis(ha.RedisConfig{Client: client, Prefix: cfg.Outputs.Redis.Prefix, TTL: cfg.HA.TTL, Logger: logger})
		if err != nil {
			_ = client.Close()
			return nil, nil, err
		}
		return el, func() { _ = client.Close() }, nil
	}
}

// holderName names this replica in the Consul lock: the pod name on Kubernetes.
func holderName() string {
	if p := os.Getenv("POD_NAME"); p != "" {
		return p
	}
	h, _ := os.Hostname()
	return fmt.Sprintf("%s/%d", h, os.Getpid())
}

// IsLeader tells whether this replica may do leader-only work (Redis publishes,
// cleanup deletions): always true without HA.
func (d *Daemon) IsLeader() bool { return d.el == nil || d.el.IsLeader() }

// HAStatus is the election state in /api/v1/status.
type HAStatus struct {
	Backend string `json:"backend"`
	Role    string `json:"role"` // leader or standby
	Fence   int64  `json:"fence,omitempty"`
}

// HAStatus returns the election state, nil without HA.
func (d *Daemon) HAStatus() *HAStatus {
	if d.el == nil {
		return nil
	}
	st := &HAStatus{Backend: d.cfg.HA.Backend, Role: "standby"}
	if f := d.el.Fence(); f != 0 {
		st.Role, st.Fence = "leader", f
	}
	return st
}

// Elected is the elector's onElected hook: a new leader syncs at once, so Redis gets
// the current snapshot without waiting for the schedule.
func (d *Daemon) Elected(ctx context.Context) {
	if _, err := d.Sync(ctx, false); err != nil && ctx.Err() == nil {
		d.log.Warn("sync after election", "err", err)
	}
}

// standby tells whether err is a leader-only output declining to write on a replica
// that does not lead; catchUp then counts the output as up to date (the leader
// keeps it so), with no error and no publish metric.
func (d *Daemon) standby(o *outputState, cur *snapshot, err error) bool {
	if !errors.Is(err, ha.ErrNotLeader) && !errors.Is(err, ha.ErrFenced) {
		return false
	}
	d.mu.Lock()
	o.revision, o.lastError = cur.revision, ""
	d.ready = true
	d.mu.Unlock()
	d.log.Debug("standby: publish left to the leader", "output", o.out.name(), "revision", cur.revision, "reason", err)
	return true
}
