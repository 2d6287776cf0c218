// Package ssm reads flags from AWS Systems Manager Parameter Store: every parameter
// under a path is one flag (a full definition, a patch or a bare value, see
// sources.ParseValue).
//
// Parameter Store is rate limited per account and region (a shared quota of a few
// tens of requests per second), so the source keeps API calls low: a full sync pages
// through GetParametersByPath only every FullSyncEvery cycles; in between it lists
// versions with DescribeParameters (50 per page, no values) and fetches just the
// parameters whose revision (version and LastModifiedDate) changed with
// GetParameters (10 per call). Every HTTP attempt also passes a client-side token
// bucket, and throttling is retried by the SDK's adaptive retry mode.
//
// With changeQueueUrl the source also watches an SQS queue fed by an EventBridge
// rule with Parameter Store Change events (queue.go): an event wakes the daemon at
// once and the fetch reads just the named parameters.
package ssm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

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
	// ChangeQueueURL is an SQS queue that an EventBridge rule feeds with the
	// Parameter Store Change events of the path. With it the source is a
	// sources.Watcher: a change is synced as soon as its event arrives, reading only
	// the named parameters, and syncs in between read nothing (see Fetch).
	ChangeQueueURL string `yaml:"changeQueueUrl"`
	// ChangeQueueEndpoint overrides the SQS endpoint URL. Empty means Endpoint when
	// that is set (an emulator serves every API on one URL), else the regular SQS
	// endpoint of the region.
	ChangeQueueEndpoint string `yaml:"changeQueueEndpoint"`
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
	if c.ChangeQueueURL != "" {
		if err := checkHTTPURL(c.ChangeQueueURL); err != nil {
			return c, fmt.Errorf("changeQueueUrl: %w (e.g. https://sqs.eu-west-1.amazonaws.com/123456789012/flagsync-changes)", err)
		}
	}
	if c.ChangeQueueEndpoint != "" && c.ChangeQueueURL == "" {
		return c, errors.New("changeQueueEndpoint: set without changeQueueUrl")
	}
	return c, nil
}

// checkHTTPURL accepts an absolute http(s) URL with a host.
func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", raw)
	}
	return nil
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
	// Named is true when the fetch read only the parameters named by change-queue
	// events (GetParameters); a fetch that is neither full nor named nor listed
	// (Calls empty) reused the last view.
	Named bool
	// Changed and Deleted count what the fetch found: parameters new or with a new
	// revision since the previous fetch, and parameters gone.
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

	queue *changeQueue // nil without changeQueueUrl

	mu     sync.Mutex // serialises Fetch and guards the fields below
	cycle  int
	known  map[string]param // last good view, by parameter name
	primed bool
	last   *sources.Result // the result of known, returned again when nothing was read

	pendingMu sync.Mutex          // guards the change-queue state below (Watch and Fetch)
	queueLive bool                // Watch is running and its last ReceiveMessage worked
	pending   map[string]struct{} // parameters named by events since the last fetch

	statsMu sync.Mutex // separate, so LastStats never waits for a running fetch
	stats   Stats
}

// param is what the source remembers of one parameter.
type param struct {
	revision
	secure bool
	value  string
}

// revision identifies one state of a parameter. The version alone is not enough: a
// parameter deleted and created again starts over at version 1, and only its
// LastModifiedDate tells the new one from the old.
type revision struct {
	version  int64
	modified time.Time
}

func (r revision) same(o revision) bool {
	return r.version == o.version && r.modified.Equal(o.modified)
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
		o.APIOptions = append(o.APIOptions, recordAttemptErrors)
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Source{name: name, cfg: cfg, client: client, log: log, onCall: opts.OnAPICall, pending: map[string]struct{}{}}
	if cfg.ChangeQueueURL != "" {
		queueEndpoint := cmp.Or(cfg.ChangeQueueEndpoint, cfg.Endpoint)
		s.queue = &changeQueue{url: cfg.ChangeQueueURL, client: sqs.NewFromConfig(awsCfg, func(o *sqs.Options) {
			o.APIOptions = append(o.APIOptions, recordAttemptErrors)
			if queueEndpoint != "" {
				o.BaseEndpoint = aws.String(queueEndpoint)
			}
		})}
	}
	return s, nil
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

// fetchKind is how one Fetch reads the path.
type fetchKind int

const (
	fetchFull    fetchKind = iota // GetParametersByPath over the whole path
	fetchListing                  // DescribeParameters, then GetParameters for what changed
	fetchNamed                    // GetParameters for the names change events gave
	fetchNone                     // nothing: the queue is live and named nothing
)

// maxNamedFetch is the most event-named parameters read by name (10 GetParameters
// calls); past it one listing of the path is cheaper for most paths.
const maxNamedFetch = 100

// Fetch reads the flags under the path: a full sync on the first call and every
// FullSyncEvery calls, an incremental listing otherwise. With a change queue that
// Watch is reading, a fetch after change events reads just the named parameters
// (and does not count towards FullSyncEvery), and a fetch with no event reads
// nothing, except the periodic full sync that catches any event that was lost. On
// error nothing is remembered from the failed attempt, so the next fetch starts from
// the last good view (and names from events are kept for it). ctx bounds the whole
// fetch, retries included (the daemon's per-source timeout).
func (s *Source) Fetch(ctx context.Context) (*sources.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	start := time.Now()
	names, live := s.takePending()
	kind := s.fetchKind(live, len(names))
	st := Stats{Full: kind == fetchFull, Named: kind == fetchNamed, Calls: map[string]int{}}
	var (
		next map[string]param
		err  error
	)
	switch kind {
	case fetchFull:
		next, err = s.fullSync(ctx, &st)
	case fetchListing:
		next, err = s.incrementalSync(ctx, &st)
	case fetchNamed:
		next, err = s.namedSync(ctx, &st, names)
	case fetchNone:
		next = s.known
	}
	st.Duration = time.Since(start)
	if err != nil {
		s.addPending(names)
		return nil, err
	}
	if kind == fetchFull {
		for name, p := range next {
			if old, ok := s.known[name]; !ok || !old.same(p.revision) {
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
	if kind != fetchNamed {
		s.cycle++
	}
	if kind != fetchNone || s.last == nil {
		s.known, s.primed = next, true
		s.last = s.result(next)
	}
	s.statsMu.Lock()
	s.stats = st
	s.statsMu.Unlock()
	s.log.Debug("ssm sync", "source", s.name, "path", s.cfg.Path, "full", st.Full, "named", st.Named,
		"parameters", st.Parameters, "changed", st.Changed, "deleted", st.Deleted,
		"calls", st.Calls, "duration", st.Duration)
	return s.last, nil
}

// fetchKind decides how the next fetch reads the path; live tells the change queue
// is being read, named how many parameters its events named.
func (s *Source) fetchKind(live bool, named int) fetchKind {
	switch {
	case !s.primed:
		return fetchFull
	case live && named > 0 && named <= maxNamedFetch:
		return fetchNamed
	case s.cycle%s.cfg.FullSyncEvery == 0:
		return fetchFull
	case live && named == 0:
		return fetchNone
	default:
		return fetchListing
	}
}

// takePending returns (and forgets) the names change events gave since the last
// fetch, sorted, and whether the change queue is live.
func (s *Source) takePending() ([]string, bool) {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	names := slices.Sorted(maps.Keys(s.pending))
	clear(s.pending)
	return names, s.queueLive
}

// addPending records parameter names for the next fetch.
func (s *Source) addPending(names []string) {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	for _, n := range names {
		s.pending[n] = struct{}{}
	}
}

func (s *Source) setQueueLive(live bool) {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	s.queueLive = live
}

// owns tells whether a parameter name is read by this source (under the path, and
// one level down only unless recursive).
func (s *Source) owns(name string) bool {
	rest, ok := strings.CutPrefix(name, s.cfg.Path)
	return ok && rest != "" && (*s.cfg.Recursive || !strings.Contains(rest, "/"))
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
		out, err := callAPI(ctx, s, OpGetParametersByPath, func(ctx context.Context) (*ssm.GetParametersByPathOutput, error) {
			return s.client.GetParametersByPath(ctx, in)
		})
		if err != nil {
			return nil, err
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

// incrementalSync lists revisions and fetches only changed parameters.
func (s *Source) incrementalSync(ctx context.Context, st *Stats) (map[string]param, error) {
	revisions, err := s.listRevisions(ctx, st)
	if err != nil {
		return nil, err
	}
	next := make(map[string]param, len(revisions))
	var changed []string
	for name, rev := range revisions {
		if old, ok := s.known[name]; ok && old.same(rev) {
			next[name] = old
		} else {
			changed = append(changed, name)
		}
	}
	for name := range s.known {
		if _, ok := revisions[name]; !ok {
			st.Deleted++
		}
	}
	st.Changed = len(changed)
	// Names missing now were deleted between the listing and the read.
	found, _, err := s.getParameters(ctx, st, changed)
	if err != nil {
		return nil, err
	}
	for name, p := range found {
		next[name] = p
	}
	return next, nil
}

// namedSync reads the given parameters (named by change events) and keeps the rest
// of the last view; a name GetParameters does not know was deleted.
func (s *Source) namedSync(ctx context.Context, st *Stats, names []string) (map[string]param, error) {
	found, missing, err := s.getParameters(ctx, st, names)
	if err != nil {
		return nil, err
	}
	next := maps.Clone(s.known)
	for name, p := range found {
		if old, ok := next[name]; !ok || !old.same(p.revision) {
			st.Changed++
		}
		next[name] = p
	}
	for _, name := range missing {
		if _, ok := next[name]; ok {
			delete(next, name)
			st.Deleted++
		}
	}
	return next, nil
}

// getParameters reads parameters by name, getBatchSize per GetParameters call, and
// returns those found and the names Parameter Store does not know.
func (s *Source) getParameters(ctx context.Context, st *Stats, names []string) (map[string]param, []string, error) {
	found := make(map[string]param, len(names))
	var missing []string
	for batch := range slices.Chunk(names, getBatchSize) {
		s.call(st, OpGetParameters)
		out, err := callAPI(ctx, s, OpGetParameters, func(ctx context.Context) (*ssm.GetParametersOutput, error) {
			return s.client.GetParameters(ctx, &ssm.GetParametersInput{Names: batch, WithDecryption: s.cfg.Decrypt})
		})
		if err != nil {
			return nil, nil, err
		}
		for _, p := range out.Parameters {
			found[aws.ToString(p.Name)] = toParam(p)
		}
		missing = append(missing, out.InvalidParameters...)
	}
	return found, missing, nil
}

// listRevisions pages through DescribeParameters (metadata only, no values).
func (s *Source) listRevisions(ctx context.Context, st *Stats) (map[string]revision, error) {
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
	revisions := make(map[string]revision, len(s.known))
	for {
		s.call(st, OpDescribeParameters)
		out, err := callAPI(ctx, s, OpDescribeParameters, func(ctx context.Context) (*ssm.DescribeParametersOutput, error) {
			return s.client.DescribeParameters(ctx, in)
		})
		if err != nil {
			return nil, err
		}
		for _, p := range out.Parameters {
			revisions[aws.ToString(p.Name)] = revision{version: p.Version, modified: aws.ToTime(p.LastModifiedDate)}
		}
		if aws.ToString(out.NextToken) == "" {
			return revisions, nil
		}
		in.NextToken = out.NextToken
	}
}

func toParam(p types.Parameter) param {
	return param{
		revision: revision{version: p.Version, modified: aws.ToTime(p.LastModifiedDate)},
		secure:   p.Type == types.ParameterTypeSecureString,
		value:    aws.ToString(p.Value),
	}
}

// result turns the remembered parameters into flags. Parsing is repeated on every
// fetch (it is cheap next to the API calls) so the cache holds only raw data.
func (s *Source) result(params map[string]param) *sources.Result {
	res := &sources.Result{
		Definitions: map[string]*flagset.Flag{},
		Overlays:    map[string]sources.Overlay{},
	}
	for name, p := range params {
		origin := sources.Origin{Scheme: "ssm", Location: name, Version: uint64(max(p.version, 0))}
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
