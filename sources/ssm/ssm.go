// Package ssm reads flags from AWS Systems Manager Parameter Store: every parameter
// under a path is one flag (a full definition, a patch or a bare value, see
// sources.ParseValue).
//
// Parameter Store is rate limited per account and region (a shared quota of a few
// tens of requests per second), so the source keeps API calls low: a full sync pages
// through GetParametersByPath only every FullSyncEvery cycles; in between it lists
// versions with DescribeParameters (50 per page, no values) and fetches just the
// parameters whose version changed with GetParameters (10 per call). Every HTTP
// attempt also passes a client-side token bucket, and throttling is retried by the
// SDK's adaptive retry mode.
package ssm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/sources"
)

// Operation names as counted in Stats and passed to Options.OnAPICall.
const (
	OpGetParametersByPath = "GetParametersByPath"
	OpDescribeParameters  = "DescribeParameters"
	OpGetParameters       = "GetParameters"
)

// API page sizes: the maxima Parameter Store allows for each call.
const (
	byPathPageSize   = 10
	describePageSize = 50
	getBatchSize     = 10
)

// Config is the YAML configuration of an SSM source.
type Config struct {
	// Path is the parameter hierarchy to read, e.g. /flags/prod/ (a trailing slash is added).
	Path string `yaml:"path"`
	// Recursive reads nested paths too (default true); nested names become keys with "/".
	Recursive *bool `yaml:"recursive"`
	// Decrypt returns SecureString values decrypted (default true; needs kms:Decrypt).
	Decrypt *bool `yaml:"decrypt"`
	// Region is the AWS region; empty uses the default chain (AWS_REGION, profile).
	Region string `yaml:"region"`
	// Endpoint overrides the SSM endpoint URL (local emulators, VPC endpoints).
	Endpoint string `yaml:"endpoint"`
	// RoleARN is an IAM role to assume with STS on top of the default credentials.
	RoleARN string `yaml:"roleArn"`
	// STSEndpoint overrides the STS endpoint URL used to assume RoleARN. Empty means
	// Endpoint when that is set (an emulator serves both APIs on one URL, and a test
	// must never reach the real STS), else the regular STS endpoint.
	STSEndpoint string `yaml:"stsEndpoint"`
	// FullSyncEvery runs a full GetParametersByPath sync every N fetches (default 10;
	// 1 = always full).
	FullSyncEvery int `yaml:"fullSyncEvery"`
	// RateLimit caps requests per second to the SSM API, retries included (default 20).
	RateLimit float64 `yaml:"rateLimit"`
	// MaxAttempts is how many times one API call is tried on throttling or transient
	// errors (default 5).
	MaxAttempts int `yaml:"maxAttempts"`
}

// Defaults.
const (
	DefaultFullSyncEvery = 10
	DefaultRateLimit     = 20.0
	DefaultMaxAttempts   = 5
)

func (c Config) withDefaults() (Config, error) {
	if c.Path == "" {
		return c, errors.New("path: required (e.g. /flags/prod/)")
	}
	if !strings.HasPrefix(c.Path, "/") {
		return c, fmt.Errorf("path: %q must start with / (a parameter hierarchy)", c.Path)
	}
	if !strings.HasSuffix(c.Path, "/") {
		c.Path += "/"
	}
	if c.Recursive == nil {
		c.Recursive = aws.Bool(true)
	}
	if c.Decrypt == nil {
		c.Decrypt = aws.Bool(true)
	}
	switch {
	case c.FullSyncEvery == 0:
		c.FullSyncEvery = DefaultFullSyncEvery
	case c.FullSyncEvery < 0:
		return c, fmt.Errorf("fullSyncEvery: must be at least 1, got %d", c.FullSyncEvery)
	}
	switch {
	case c.RateLimit == 0:
		c.RateLimit = DefaultRateLimit
	case c.RateLimit < 0:
		return c, fmt.Errorf("rateLimit: must be positive, got %g", c.RateLimit)
	}
	switch {
	case c.MaxAttempts == 0:
		c.MaxAttempts = DefaultMaxAttempts
	case c.MaxAttempts < 0:
		return c, fmt.Errorf("maxAttempts: must be at least 1, got %d", c.MaxAttempts)
	}
	return c, nil
}

// Options are the non-YAML collaborators of a source.
type Options struct {
	// Logger receives debug lines about syncs (never parameter values); nil discards.
	Logger *slog.Logger
	// OnAPICall, if set, is called once per SSM operation call (not per retry) with
	// the operation name, e.g. to feed a Prometheus counter. It must not block.
	OnAPICall func(operation string)
	// HTTPClient replaces the SDK's HTTP client (tests); the rate limit still applies.
	HTTPClient aws.HTTPClient
	// RetryBackoff replaces the SDK's backoff between attempts (tests keep retries fast).
	RetryBackoff retry.BackoffDelayer
}

// Stats describes the last completed Fetch.
type Stats struct {
	// Full is true when the fetch was a full GetParametersByPath sync.
	Full bool
	// Calls counts API operation calls by operation name (retries not included).
	Calls map[string]int
	// Parameters is the number of parameters under the path.
	Parameters int
	// Changed and Deleted count what an incremental sync found (a full sync: changed
	// = parameters new or with a new version since the previous fetch).
	Changed, Deleted int
	// Duration is the wall time of the fetch.
	Duration time.Duration
}

// Source is a configured SSM Parameter Store source. Safe for concurrent use; fetches
// are serialised.
type Source struct {
	name   string
	cfg    Config
	client *ssm.Client
	log    *slog.Logger
	onCall func(string)

	mu     sync.Mutex // serialises Fetch and guards the fields below
	cycle  int
	known  map[string]param // last good view, by parameter name
	primed bool

	statsMu sync.Mutex // separate, so LastStats never waits for a running fetch
	stats   Stats
}

// param is what the source remembers of one parameter.
type param struct {
	version int64
	secure  bool
	value   string
}

// New builds a source; credentials come from the default AWS chain (environment,
// shared config/profile, web identity/IRSA, container and instance roles),
// optionally assuming cfg.RoleARN.
func New(ctx context.Context, name string, cfg Config, opts Options) (*Source, error) {
	// Errors name the config key first ("path: required"): the daemon prefixes
	// the entry ("sources[2].").
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	loadOpts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(opts.HTTPClient), // nil keeps the SDK's client (and AWS_CA_BUNDLE)
		config.WithRetryer(func() aws.Retryer {
			return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
				o.StandardOptions = append(o.StandardOptions, func(so *retry.StandardOptions) {
					so.MaxAttempts = cfg.MaxAttempts
					so.MaxBackoff = 20 * time.Second
					if opts.RetryBackoff != nil {
						so.Backoff = opts.RetryBackoff
					}
				})
			})
		}),
	}
	if cfg.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("region/credentials: loading the AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("region: required (set region: or AWS_REGION)")
	}
	if cfg.RoleARN != "" {
		stsEndpoint := cmp.Or(cfg.STSEndpoint, cfg.Endpoint)
		stsClient := sts.NewFromConfig(awsCfg, func(o *sts.Options) {
			if stsEndpoint != "" {
				o.BaseEndpoint = aws.String(stsEndpoint)
			}
		})
		provider := stscreds.NewAssumeRoleProvider(stsClient, cfg.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "flagsync-" + name
		})
		awsCfg.Credentials = aws.NewCredentialsCache(assumeRoleProvider{role: cfg.RoleARN, next: provider})
	}
	limit := newLimiter(cfg.RateLimit, burstFor(cfg.RateLimit))
	client := ssm.NewFromConfig(awsCfg, func(o *ssm.Options) {
		o.HTTPClient = &rateLimitedClient{next: o.HTTPClient, limit: limit}
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{name: name, cfg: cfg, client: client, log: log, onCall: opts.OnAPICall}, nil
}

// Name is the configured source name.
func (s *Source) Name() string { return s.name }

// LastStats returns the statistics of the last completed Fetch.
func (s *Source) LastStats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	st := s.stats
	st.Calls = maps.Clone(s.stats.Calls)
	return st
}

// Fetch reads the flags under the path: a full sync on the first call and every
// FullSyncEvery calls, an incremental one otherwise. On error nothing is remembered
// from the failed attempt, so the next fetch starts from the last good view. ctx
// bounds the whole fetch, retries included (the daemon's per-source timeout).
func (s *Source) Fetch(ctx context.Context) (*sources.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	start := time.Now()
	full := !s.primed || s.cycle%s.cfg.FullSyncEvery == 0
	st := Stats{Full: full, Calls: map[string]int{}}
	var (
		next map[string]param
		err  error
	)
	if full {
		next, err = s.fullSync(ctx, &st)
	} else {
		next, err = s.incrementalSync(ctx, &st)
	}
	st.Duration = time.Since(start)
	if err != nil {
		return nil, err
	}
	if full {
		for name, p := range next {
			if old, ok := s.known[name]; !ok || old.version != p.version {
				st.Changed++
			}
		}
		for name := range s.known {
			if _, ok := next[name]; !ok {
				st.Deleted++
			}
		}
	}
	st.Parameters = len(next)
	s.known, s.primed = next, true
	s.cycle++
	s.statsMu.Lock()
	s.stats = st
	s.statsMu.Unlock()
	s.log.Debug("ssm sync", "source", s.name, "path", s.cfg.Path, "full", full,
		"parameters", st.Parameters, "changed", st.Changed, "deleted", st.Deleted,
		"calls", st.Calls, "duration", st.Duration)
	return s.result(next), nil
}

func (s *Source) call(st *Stats, op string) {
	st.Calls[op]++
	if s.onCall != nil {
		s.onCall(op)
	}
}

// fullSync pages through GetParametersByPath.
func (s *Source) fullSync(ctx context.Context, st *Stats) (map[string]param, error) {
	next := make(map[string]param, len(s.known))
	in := &ssm.GetParametersByPathInput{
		Path:           aws.String(s.cfg.Path),
		Recursive:      s.cfg.Recursive,
		WithDecryption: s.cfg.Decrypt,
		MaxResults:     aws.Int32(byPathPageSize),
	}
	for {
		s.call(st, OpGetParametersByPath)
		out, err := s.client.GetParametersByPath(ctx, in)
		if err != nil {
			return nil, s.apiError(OpGetParametersByPath, err)
		}
		for _, p := range out.Parameters {
			next[aws.ToString(p.Name)] = toParam(p)
		}
		// An empty page with a token is legal: keep going until the token is gone.
		if aws.ToString(out.NextToken) == "" {
			return next, nil
		}
		in.NextToken = out.NextToken
	}
}

// incrementalSync lists versions and fetches only changed parameters.
func (s *Source) incrementalSync(ctx context.Context, st *Stats) (map[string]param, error) {
	versions, err := s.listVersions(ctx, st)
	if err != nil {
		return nil, err
	}
	next := make(map[string]param, len(versions))
	var changed []string
	for name, v := range versions {
		if old, ok := s.known[name]; ok && old.version == v {
			next[name] = old
		} else {
			changed = append(changed, name)
		}
	}
	for name := range s.known {
		if _, ok := versions[name]; !ok {
			st.Deleted++
		}
	}
	st.Changed = len(changed)
	for i := 0; i < len(changed); i += getBatchSize {
		batch := changed[i:min(i+getBatchSize, len(changed))]
		s.call(st, OpGetParameters)
		out, err := s.client.GetParameters(ctx, &ssm.GetParametersInput{Names: batch, WithDecryption: s.cfg.Decrypt})
		if err != nil {
			return nil, s.apiError(OpGetParameters, err)
		}
		// Names in out.InvalidParameters were deleted between the listing and now.
		for _, p := range out.Parameters {
			next[aws.ToString(p.Name)] = toParam(p)
		}
	}
	return next, nil
}

// listVersions pages through DescribeParameters (metadata only, no values).
func (s *Source) listVersions(ctx context.Context, st *Stats) (map[string]int64, error) {
	option := "OneLevel"
	if *s.cfg.Recursive {
		option = "Recursive"
	}
	// The Path filter takes the hierarchy without its trailing slash ("/" stays "/").
	filterPath := strings.TrimSuffix(s.cfg.Path, "/")
	if filterPath == "" {
		filterPath = "/"
	}
	in := &ssm.DescribeParametersInput{
		ParameterFilters: []types.ParameterStringFilter{{
			Key: aws.String("Path"), Option: aws.String(option), Values: []string{filterPath},
		}},
		MaxResults: aws.Int32(describePageSize),
	}
	versions := make(map[string]int64, len(s.known))
	for {
		s.call(st, OpDescribeParameters)
		out, err := s.client.DescribeParameters(ctx, in)
		if err != nil {
			return nil, s.apiError(OpDescribeParameters, err)
		}
		for _, p := range out.Parameters {
			versions[aws.ToString(p.Name)] = p.Version
		}
		if aws.ToString(out.NextToken) == "" {
			return versions, nil
		}
		in.NextToken = out.NextToken
	}
}

func toParam(p types.Parameter) param {
	return param{version: p.Version, secure: p.Type == types.ParameterTypeSecureString, value: aws.ToString(p.Value)}
}

// result turns the remembered parameters into flags. Parsing is repeated on every
// fetch (it is cheap next to the API calls) so the cache holds only raw data.
func (s *Source) result(params map[string]param) *sources.Result {
	res := &sources.Result{
		Definitions: map[string]*flagset.Flag{},
		Overlays:    map[string]sources.Overlay{},
	}
	for name, p := range params {
		origin := fmt.Sprintf("ssm:%s@%d", name, p.version)
		key, err := sources.RelativeKey(s.cfg.Path, name)
		if err == nil && p.secure && !*s.cfg.Decrypt {
			// Without decryption the value is ciphertext; taking it as a bare string
			// would publish garbage.
			err = errors.New("SecureString parameter read with decrypt: false")
		}
		if err != nil {
			res.Problems = append(res.Problems, flagset.Problem{Flag: key, Path: "flags." + key, Message: fmt.Sprintf("%v (%s)", err, origin)})
			continue
		}
		if p.secure {
			res.MarkSecret(key)
		}
		def, ov, err := sources.ParseValue(key, []byte(p.value), origin)
		if err != nil {
			redact := ""
			if p.secure {
				// A SecureString's parse error may quote its content.
				redact = "invalid SecureString value (details withheld to keep the secret out of logs)"
			}
			res.Problems = append(res.Problems, sources.ValueProblem(key, origin, err, redact))
			continue
		}
		res.AddParsed(key, origin, def, ov)
	}
	return res
}

// apiError makes an SDK error short and clear: "ssm /flags/prod/: AccessDeniedException:
// <message> (GetParametersByPath)". It wraps the SDK error for errors.As.
func (s *Source) apiError(op string, err error) error {
	return &apiCallError{path: s.cfg.Path, op: op, err: err}
}

type apiCallError struct {
	path, op string
	err      error
}

func (e *apiCallError) Error() string {
	detail := e.op
	var maxErr *retry.MaxAttemptsError
	if errors.As(e.err, &maxErr) {
		detail = fmt.Sprintf("%s, gave up after %d attempts", e.op, maxErr.Attempt)
	}
	// A failed AssumeRole surfaces as the SSM call's error; name the role so an STS
	// AccessDenied is not mistaken for a missing SSM permission.
	what := ""
	var roleErr *assumeRoleError
	if errors.As(e.err, &roleErr) {
		what = "assuming role " + roleErr.role + ": "
	}
	var apiErr smithy.APIError
	if errors.As(e.err, &apiErr) {
		return fmt.Sprintf("ssm %s: %s%s: %s (%s)", e.path, what, apiErr.ErrorCode(), apiErr.ErrorMessage(), detail)
	}
	// Network failures: the HTTP error says it all without the SDK's wrapping layers.
	var urlErr *url.Error
	if errors.As(e.err, &urlErr) {
		return fmt.Sprintf("ssm %s: %s%s: %v", e.path, what, detail, urlErr)
	}
	if roleErr != nil {
		return fmt.Sprintf("ssm %s: %s%v (%s)", e.path, what, roleErr.err, detail)
	}
	return fmt.Sprintf("ssm %s: %s: %v", e.path, detail, e.err)
}

func (e *apiCallError) Unwrap() error { return e.err }

// assumeRoleProvider marks errors of the STS credentials provider so apiCallError
// can say the role could not be assumed.
type assumeRoleProvider struct {
	role string
	next aws.CredentialsProvider
}

func (p assumeRoleProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := p.next.Retrieve(ctx)
	if err != nil {
		return creds, &assumeRoleError{role: p.role, err: err}
	}
	return creds, nil
}

// ProviderSources passes on what the SDK reports about where credentials come from.
func (p assumeRoleProvider) ProviderSources() []aws.CredentialSource {
	if src, ok := p.next.(aws.CredentialProviderSource); ok {
		return src.ProviderSources()
	}
	return nil
}

type assumeRoleError struct {
	role string
	err  error
}

func (e *assumeRoleError) Error() string { return "assuming role " + e.role + ": " + e.err.Error() }

func (e *assumeRoleError) Unwrap() error { return e.err }
