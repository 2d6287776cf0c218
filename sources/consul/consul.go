// Package consul reads flags from Consul KV: every key under a prefix is one flag (a
// full definition, a patch or a bare value, see sources.ParseValue), and a blocking
// query on the prefix tells the daemon within milliseconds when something changed.
package consul

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/sources"
)

// Consistency modes (Consul's read consistency, see the Consul API docs).
const (
	// Stale reads from any server; a result older than MaxStale is re-read from the leader.
	Stale = "stale"
	// Default reads from the leader (may be stale for a few ms during a leader change).
	Default = "default"
	// Consistent reads from the leader after it confirmed its leadership.
	Consistent = "consistent"
)

// Defaults.
const (
	DefaultMaxStale    = 5 * time.Second
	DefaultWaitTime    = 5 * time.Minute
	DefaultMinInterval = 50 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
	minBackoff         = 100 * time.Millisecond
)

// Config is the YAML configuration of a Consul KV source. Empty connection fields
// fall back to Consul's own environment (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, ...).
type Config struct {
	// Address is host:port of the Consul HTTP API (default 127.0.0.1:8500).
	Address string `yaml:"address"`
	// Scheme is http or https.
	Scheme string `yaml:"scheme"`
	// Token is the ACL token; TokenFile reads it from a file instead.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"tokenFile"`
	// TLS: CA, client certificate, the server name to verify, and (never in
	// production) skipping verification.
	CAFile             string `yaml:"caFile"`
	CertFile           string `yaml:"certFile"`
	KeyFile            string `yaml:"keyFile"`
	ServerName         string `yaml:"serverName"`
	InsecureSkipVerify bool   `yaml:"insecureSkipVerify"`
	// Datacenter, Namespace and Partition are passed through (the latter two are
	// Consul Enterprise features).
	Datacenter string `yaml:"datacenter"`
	Namespace  string `yaml:"namespace"`
	Partition  string `yaml:"partition"`
	// Prefix is the KV folder holding the flags, e.g. flags/prod/ (a trailing slash is added).
	Prefix string `yaml:"prefix"`
	// Consistency is stale (default), default or consistent.
	Consistency string `yaml:"consistency"`
	// MaxStale is how old a stale read may be before it is repeated on the leader (default 5s).
	MaxStale time.Duration `yaml:"maxStale"`
	// Watch enables the blocking-query watch (default true).
	Watch *bool `yaml:"watch"`
	// WaitTime is the longest a blocking query waits for a change (default 5m).
	WaitTime time.Duration `yaml:"waitTime"`
	// MinInterval is the least time between two watch queries, so a flapping key
	// cannot hammer Consul (default 50ms).
	MinInterval time.Duration `yaml:"minInterval"`
	// MaxBackoff caps the wait between watch retries after errors (default 10s).
	MaxBackoff time.Duration `yaml:"maxBackoff"`
}

func (c Config) withDefaults() (Config, error) {
	c.Prefix = strings.TrimPrefix(c.Prefix, "/")
	if c.Prefix == "" {
		return c, errors.New("prefix: required (e.g. flags/prod/)")
	}
	if !strings.HasSuffix(c.Prefix, "/") {
		c.Prefix += "/"
	}
	switch c.Consistency {
	case "":
		c.Consistency = Stale
	case Stale, Default, Consistent:
	default:
		return c, fmt.Errorf("consistency: must be stale, default or consistent, got %q", c.Consistency)
	}
	if c.Token != "" && c.TokenFile != "" {
		return c, errors.New("token, tokenFile: set one, not both")
	}
	if c.Watch == nil {
		w := true
		c.Watch = &w
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"maxStale", &c.MaxStale, DefaultMaxStale},
		{"waitTime", &c.WaitTime, DefaultWaitTime},
		{"minInterval", &c.MinInterval, DefaultMinInterval},
		{"maxBackoff", &c.MaxBackoff, DefaultMaxBackoff},
	} {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0:
			return c, fmt.Errorf("%s: must be positive, got %s", d.name, *d.v)
		}
	}
	return c, nil
}

// Options are the non-YAML collaborators of a source.
type Options struct {
	// Logger receives watch errors and recoveries (keys, never values); nil discards.
	Logger *slog.Logger
}

// Source is a configured Consul KV source. Safe for concurrent use.
type Source struct {
	name string
	cfg  Config
	kv   *api.KV
	log  *slog.Logger

	mu sync.Mutex
	// answer is the watch's latest answer that no Fetch has used yet: the sync the
	// watch's signal starts reads it instead of listing the prefix again.
	answer api.KVPairs
	// last is the Result of the pairs whose digest is lastDigest: an unchanged
	// prefix returns it again without parsing.
	last       *sources.Result
	lastDigest [32]byte
	// parsed is what each KV key of the last Result turned into, by key.
	parsed map[string]parsedPair
}

// New builds a source. It does not contact Consul: an unreachable agent is a Fetch
// error, not a startup failure.
func New(name string, cfg Config, opts Options) (*Source, error) {
	// Errors name the config key first ("prefix: required"): the daemon prefixes
	// the entry ("sources[2].").
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	client, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{name: name, cfg: cfg, kv: client.KV(), log: log}, nil
}

// NewClient builds a Consul API client from the connection keys of cfg (address,
// scheme, token, TLS, datacenter, namespace, partition); empty keys fall back to
// Consul's environment variables. The daemon's leader election uses it so the lock
// talks to Consul exactly like the source.
func NewClient(cfg Config) (*api.Client, error) {
	ac := api.DefaultConfig()
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&ac.Address, cfg.Address)
	set(&ac.Scheme, cfg.Scheme)
	set(&ac.Datacenter, cfg.Datacenter)
	set(&ac.Namespace, cfg.Namespace)
	set(&ac.Partition, cfg.Partition)
	if cfg.Token != "" || cfg.TokenFile != "" {
		ac.Token, ac.TokenFile = cfg.Token, cfg.TokenFile
	}
	set(&ac.TLSConfig.CAFile, cfg.CAFile)
	set(&ac.TLSConfig.CertFile, cfg.CertFile)
	set(&ac.TLSConfig.KeyFile, cfg.KeyFile)
	set(&ac.TLSConfig.Address, cfg.ServerName)
	if cfg.InsecureSkipVerify {
		ac.TLSConfig.InsecureSkipVerify = true
	}
	client, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("address/TLS: %w", err)
	}
	return client, nil
}

// Name is the configured source name.
func (s *Source) Name() string { return s.name }

// Fetch returns what the prefix holds. The first Fetch after a watch signal uses
// the answer of the blocking query that caused the signal (the watch keeps it only
// while its queries succeed); any other Fetch lists the prefix now (not blocking).
// No keys under the prefix is an empty result; an unreachable or refusing Consul is
// an error, never "no flags".
func (s *Source) Fetch(ctx context.Context) (*sources.Result, error) {
	s.mu.Lock()
	pairs := s.answer
	s.answer = nil
	s.mu.Unlock()
	if pairs == nil {
		var err error
		if pairs, _, err = s.list(ctx, 0); err != nil {
			return nil, err
		}
	}
	return s.resultOf(pairs), nil
}

// resultOf is the Result for pairs, the previous one when they are unchanged.
func (s *Source) resultOf(pairs api.KVPairs) *sources.Result {
	d := digestOf(pairs)
	s.mu.Lock()
	if s.last != nil && d == s.lastDigest {
		res := s.last
		s.mu.Unlock()
		return res
	}
	s.mu.Unlock()
	res := s.result(pairs)
	s.mu.Lock()
	s.last, s.lastDigest = res, d
	s.mu.Unlock()
	return res
}

// keepAnswer stores the watch's latest answer for the next Fetch; nil drops it (after
// a watch error the answer may be outdated).
func (s *Source) keepAnswer(pairs api.KVPairs, ok bool) {
	if ok && pairs == nil {
		pairs = api.KVPairs{} // an empty prefix is an answer too
	}
	s.mu.Lock()
	s.answer = pairs
	s.mu.Unlock()
}

// list reads the prefix with the configured consistency; waitIndex > 0 makes it a
// blocking query. A stale answer older than MaxStale (or from a server that knows no
// leader) is repeated on the leader.
func (s *Source) list(ctx context.Context, waitIndex uint64) (api.KVPairs, *api.QueryMeta, error) {
	q := &api.QueryOptions{
		AllowStale:        s.cfg.Consistency == Stale,
		RequireConsistent: s.cfg.Consistency == Consistent,
		WaitIndex:         waitIndex,
	}
	if waitIndex > 0 {
		q.WaitTime = s.cfg.WaitTime
	}
	pairs, meta, err := s.kv.List(s.cfg.Prefix, q.WithContext(ctx))
	if err == nil && q.AllowStale && (meta.LastContact > s.cfg.MaxStale || !meta.KnownLeader) {
		s.log.Debug("consul stale read too old, asking the leader", "source", s.name,
			"lastContact", meta.LastContact, "knownLeader", meta.KnownLeader)
		q.AllowStale = false
		q.WaitIndex, q.WaitTime = 0, 0 // the data is already there: do not block again
		pairs, meta, err = s.kv.List(s.cfg.Prefix, q.WithContext(ctx))
	}
	if err != nil {
		var se api.StatusError
		if errors.As(err, &se) && se.Code == http.StatusForbidden {
			return nil, nil, s.denied(fmt.Sprintf("HTTP 403 %q", se.Body))
		}
		return nil, nil, fmt.Errorf("consul %s: %w", s.cfg.Prefix, err)
	}
	// A recursive list does not fail on missing rights: Consul silently leaves out the
	// keys the token may not read (a 404 when that is all of them). Taking that as
	// "the flags were deleted" would drop flags, so an empty answer is checked with a
	// plain read of the prefix key, which does answer 403 without read rights.
	if meta.ResultsFilteredByACLs {
		return nil, nil, s.denied("keys were hidden by ACLs")
	}
	if len(pairs) == 0 {
		probe := &api.QueryOptions{AllowStale: q.AllowStale, RequireConsistent: q.RequireConsistent}
		if _, _, err := s.kv.Get(s.cfg.Prefix, probe.WithContext(ctx)); err != nil {
			var se api.StatusError
			if errors.As(err, &se) && se.Code == http.StatusForbidden {
				return nil, nil, s.denied(fmt.Sprintf("HTTP 403 %q", se.Body))
			}
			return nil, nil, fmt.Errorf("consul %s: %w", s.cfg.Prefix, err)
		}
	}
	return pairs, meta, nil
}

// ErrPermissionDenied is wrapped by Fetch errors caused by the ACL token.
var ErrPermissionDenied = errors.New("permission denied")

func (s *Source) denied(detail string) error {
	return fmt.Errorf("consul %s: %w reading prefix %q (%s): the token needs key_prefix %q { policy = \"read\" }",
		s.cfg.Prefix, ErrPermissionDenied, s.cfg.Prefix, detail, s.cfg.Prefix)
}

// Watch runs blocking queries on the prefix and calls changed when its content
// changed, once when the first query answered and once after recovering from errors;
// the answer behind each signal is kept for the next Fetch. It follows Consul's
// blocking-query rules: the index is reset to 0 when it
// goes backwards (and after every error, so a restarted agent with fewer writes
// answers at once instead of waiting for its index to catch up), and an index below 1
// is treated as 1. Queries are at least MinInterval apart; errors back off
// exponentially with jitter up to MaxBackoff. With watch: false it just waits for ctx.
func (s *Source) Watch(ctx context.Context, changed func()) error {
	if !*s.cfg.Watch {
		<-ctx.Done()
		return ctx.Err()
	}
	var (
		index    uint64
		digest   [32]byte
		primed   bool // digest holds a successful answer
		failures int
		last     time.Time
	)
	for {
		if wait := s.cfg.MinInterval - time.Since(last); wait > 0 && !sources.Sleep(ctx, wait) {
			return ctx.Err()
		}
		last = time.Now()
		pairs, meta, err := s.list(ctx, index)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			s.keepAnswer(nil, false)
			failures++
			index = 0
			backoff := backoffFor(failures, s.cfg.MaxBackoff)
			if failures == 1 {
				s.log.Warn("consul watch failed; retrying", "source", s.name, "error", err)
			}
			if !sources.Sleep(ctx, backoff) {
				return ctx.Err()
			}
			continue
		}
		recovered := failures > 0
		if recovered {
			s.log.Info("consul watch recovered", "source", s.name, "failures", failures)
			failures = 0
		}
		switch next := meta.LastIndex; {
		case next < index:
			index = 0 // went backwards (restore, new cluster): start over
		case next < 1:
			index = 1
		default:
			index = next
		}
		// Wake-ups without a change (timeouts, writes elsewhere) are normal: compare
		// what the prefix holds, not just the index. Also signal once the watch is
		// armed (a change between the caller's first fetch and now would otherwise
		// wait for the next full sync) and after an outage (fetches failed meanwhile).
		d := digestOf(pairs)
		if !primed || recovered || d != digest {
			s.keepAnswer(pairs, true)
			changed()
		}
		digest, primed = d, true
	}
}

// digestOf identifies the prefix's content by key and ModifyIndex (and flags):
// every write bumps a key's ModifyIndex, a delete removes it.
func digestOf(pairs api.KVPairs) [32]byte {
	h := sha256.New()
	var buf [8]byte
	for _, p := range pairs {
		h.Write([]byte(p.Key))
		h.Write([]byte{0})
		binary.BigEndian.PutUint64(buf[:], p.ModifyIndex)
		h.Write(buf[:])
		binary.BigEndian.PutUint64(buf[:], p.Flags)
		h.Write(buf[:])
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// backoffFor is min(max, 100ms * 2^(n-1)) with ±20% jitter, so many daemons do not
// reconnect in lockstep after an outage.
func backoffFor(n int, maxBackoff time.Duration) time.Duration {
	d := minBackoff << min(n-1, 20)
	d = min(d, maxBackoff)
	jitter := time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5
	return d + jitter
}

// parsedPair is what one KV pair turned into at one ModifyIndex: exactly one of def,
// ov and problem is set. The flags in it are shared by the Results that hold them,
// which are never mutated.
type parsedPair struct {
	modifyIndex uint64
	key         string
	def         *flagset.Flag
	origin      sources.Origin // where def was read
	ov          *sources.Overlay
	problem     *flagset.Problem
}

// result maps KV pairs to flags: the key relative to the prefix is the flag key
// (flags/prod/team/x → team/x); folders (keys ending in /) are skipped. A pair whose
// ModifyIndex is the one parsed last time is not parsed again, so a change of one
// key in a large prefix costs one parse.
func (s *Source) result(pairs api.KVPairs) *sources.Result {
	res := &sources.Result{
		Definitions: map[string]*flagset.Flag{},
		Overlays:    map[string]sources.Overlay{},
	}
	s.mu.Lock()
	prev := s.parsed
	s.mu.Unlock()
	next := make(map[string]parsedPair, len(pairs))
	// Sorted so problems come out in a stable order.
	slices.SortFunc(pairs, func(a, b *api.KVPair) int { return strings.Compare(a.Key, b.Key) })
	for _, p := range pairs {
		if strings.HasSuffix(p.Key, "/") {
			continue
		}
		pp, ok := prev[p.Key]
		if !ok || pp.modifyIndex != p.ModifyIndex {
			pp = s.parse(p)
		}
		next[p.Key] = pp
		switch {
		case pp.problem != nil:
			res.Problems = append(res.Problems, *pp.problem)
		case pp.def != nil:
			res.Definitions[pp.key] = pp.def
			res.SetOrigin(pp.key, pp.origin)
		default:
			res.Overlays[pp.key] = *pp.ov
		}
	}
	s.mu.Lock()
	s.parsed = next
	s.mu.Unlock()
	return res
}

// parse reads one pair by the shared value rules; origin names key and ModifyIndex.
func (s *Source) parse(p *api.KVPair) parsedPair {
	pp := parsedPair{modifyIndex: p.ModifyIndex}
	origin := sources.Origin{Scheme: "consul", Location: p.Key, Version: p.ModifyIndex}
	key, err := sources.RelativeKey(s.cfg.Prefix, p.Key)
	pp.key = key
	if err != nil {
		pp.problem = &flagset.Problem{Flag: key, Path: "flags." + key, Message: fmt.Sprintf("%v (%s)", err, origin)}
		return pp
	}
	def, ov, err := sources.ParseValue(key, p.Value, origin)
	if err != nil {
		prob := sources.ValueProblem(key, origin, err, "")
		pp.problem = &prob
		return pp
	}
	one := &sources.Result{Definitions: map[string]*flagset.Flag{}, Overlays: map[string]sources.Overlay{}}
	one.AddParsed(key, origin, def, ov)
	pp.origin = origin
	if pp.def = one.Definitions[key]; pp.def == nil {
		o := one.Overlays[key]
		pp.ov = &o
	}
	return pp
}
