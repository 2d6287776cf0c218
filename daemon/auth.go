package daemon

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/flagsync/flagsync/internal/apitoken"
)

// MinTokenLength is the shortest token http.auth accepts: tokens are compared, not
// rate limited, so they must be long enough not to be guessed.
const MinTokenLength = apitoken.MinLength

// AuthConfig is http.auth: who may call which route (docs/SECURITY.md).
type AuthConfig struct {
	// Read tokens open the read routes: status, snapshot, the status page, OFREP
	// and metrics.
	Read TokenConfig `yaml:"read"`
	// Admin tokens open everything, including the routes that change what is
	// published (sync, force, guard release). Without one those routes are refused.
	Admin TokenConfig `yaml:"admin"`
	// OpenMetrics serves /metrics without a token (Prometheus setups that scrape
	// without credentials); metrics carry no flag values.
	OpenMetrics bool `yaml:"openMetrics"`
}

// TokenConfig names where tokens come from; the tokens themselves never appear in the
// configuration.
type TokenConfig struct {
	// Env are names of environment variables that each hold one token.
	Env []string `yaml:"env"`
	// Files hold tokens, one per line (blank lines and # comments ignored), e.g. a
	// mounted Kubernetes Secret. They are read again when they change, so a rotated
	// Secret takes effect without a restart; list the old and the new token while
	// clients move over.
	Files []string `yaml:"files"`
}

func (t TokenConfig) empty() bool { return len(t.Env) == 0 && len(t.Files) == 0 }

// tokenSet is one kind of token (read or admin) from env and files.
type tokenSet struct {
	env   []apitoken.Digest
	files []*watchedFiles[[]apitoken.Digest]
}

// newTokenSet reads the tokens of c; field names the key in errors ("http.auth.read").
// Errors never contain a token.
func newTokenSet(c TokenConfig, field string, lookupEnv func(string) (string, bool)) (*tokenSet, error) {
	s := &tokenSet{}
	for i, name := range c.Env {
		v, ok := lookupEnv(name)
		v = strings.TrimSpace(v)
		if !ok || v == "" {
			return nil, fmt.Errorf("%s.env[%d]: environment variable %s is not set or empty", field, i, name)
		}
		if len(v) < MinTokenLength {
			return nil, fmt.Errorf("%s.env[%d]: the token in %s is shorter than %d characters", field, i, name, MinTokenLength)
		}
		s.env = append(s.env, apitoken.Sum(v))
	}
	for i, path := range c.Files {
		w, err := newWatchedFiles(func(b [][]byte) ([]apitoken.Digest, error) { return apitoken.ParseFile(b[0]) }, path)
		if err != nil {
			return nil, fmt.Errorf("%s.files[%d]: %w", field, i, err)
		}
		s.files = append(s.files, w)
	}
	return s, nil
}

// match tells whether presented is one of the set's tokens. Every token is compared
// (no early return), each in constant time. reloadErrs are token files that changed
// but could not be read (their previous tokens stay valid).
func (s *tokenSet) match(presented apitoken.Digest, now time.Time) (ok bool, reloadErrs []error) {
	if s == nil {
		return false, nil
	}
	hit := 0
	for i := range s.env {
		hit |= subtle.ConstantTimeCompare(s.env[i][:], presented[:])
	}
	for _, f := range s.files {
		toks, err := f.get(now)
		if err != nil {
			reloadErrs = append(reloadErrs, err)
		}
		for i := range toks {
			hit |= subtle.ConstantTimeCompare(toks[i][:], presented[:])
		}
	}
	return hit == 1, reloadErrs
}

func (s *tokenSet) configured() bool { return s != nil && (len(s.env) > 0 || len(s.files) > 0) }

// access is the auth decision of one route.
type access int

const (
	accessUndecided   access = iota // a route registered without a decision: refused
	accessOpen                      // health and readiness: anyone
	accessRead                      // status, snapshot, status page: read or admin token
	accessMetrics                   // /metrics: like read, or open with http.auth.openMetrics
	accessOFREP                     // OFREP: read or admin token, or an http.ofrep key
	accessOFREPStream               // OFREP's event stream: like OFREP, or a stream ticket (EventSource sends no headers)
	accessAdmin                     // changes what is published: admin token, same-origin JSON, allowed Host
)

func (a access) String() string {
	switch a {
	case accessOpen:
		return "open"
	case accessRead:
		return "read"
	case accessMetrics:
		return "metrics"
	case accessOFREP:
		return "ofrep"
	case accessOFREPStream:
		return "ofrep-stream"
	case accessAdmin:
		return "admin"
	}
	return "undecided"
}

// authPolicy is the auth of one configuration; the server swaps it on reload.
type authPolicy struct {
	closed       bool // the tokens could not be read: refuse all but open routes
	read, admin  *tokenSet
	ofrep        []apitoken.Digest // http.ofrep.apiKeys and bearerTokens: OFREP only
	openMetrics  bool
	allowedHosts []string // lower case, without port; "*" allows any
	// loopback: the listener only accepts local connections. Routes left open there
	// still check the Host, since a browser page can reach them through DNS rebinding.
	loopback bool
}

// defaultAllowedHosts are the Host names admin routes accept unless
// http.allowedHosts says otherwise: a browser reaching a loopback daemon through DNS
// rebinding sends the attacker's name, not one of these.
func defaultAllowedHosts() []string { return []string{"localhost", "127.0.0.1", "::1"} }

// newAuthPolicy reads the tokens of h.
func newAuthPolicy(h *HTTPConfig, lookupEnv func(string) (string, bool)) (*authPolicy, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	p := &authPolicy{openMetrics: h.Auth.OpenMetrics, loopback: isLoopbackListen(h.Listen)}
	var err error
	if p.read, err = newTokenSet(h.Auth.Read, "http.auth.read", lookupEnv); err != nil {
		return nil, err
	}
	if p.admin, err = newTokenSet(h.Auth.Admin, "http.auth.admin", lookupEnv); err != nil {
		return nil, err
	}
	for _, k := range append(append([]string{}, h.OFREP.APIKeys...), h.OFREP.BearerTokens...) {
		p.ofrep = append(p.ofrep, apitoken.Sum(k))
	}
	hosts := h.AllowedHosts
	if len(hosts) == 0 {
		hosts = defaultAllowedHosts()
	}
	for _, host := range hosts {
		p.allowedHosts = append(p.allowedHosts, strings.ToLower(strings.Trim(host, "[]")))
	}
	return p, nil
}

// anyTokens tells whether some credential is configured; without any, the read
// routes are open (and admin routes refused).
func (p *authPolicy) anyTokens() bool {
	return p.read.configured() || p.admin.configured() || len(p.ofrep) > 0
}

// decision is why a request was refused; code 0 lets it through.
type decision struct {
	code   int
	reason string // for the response and the debug log; never holds a credential
}

// authorize decides a request to a route with access a.
func (p *authPolicy) authorize(r *http.Request, a access, now time.Time) (decision, []error) {
	switch {
	case a == accessOpen:
		return decision{}, nil
	case p.closed:
		return decision{http.StatusServiceUnavailable, "the http.auth tokens could not be read (see the log)"}, nil
	}
	switch a {
	case accessUndecided:
		return decision{http.StatusForbidden, "this route has no auth decision (a bug: every route must declare one)"}, nil
	case accessAdmin:
		if !p.admin.configured() {
			return decision{http.StatusForbidden, "admin routes are off: no http.auth.admin token is configured"}, nil
		}
		if d := p.sameOrigin(r); d.code != 0 {
			return d, nil
		}
	case accessMetrics:
		if p.openMetrics {
			return p.openRoute(r), nil
		}
		fallthrough
	default:
		if !p.anyTokens() {
			return p.openRoute(r), nil
		}
	}
	tok, presented := apitoken.Credential(r)
	return p.checkToken(tok, presented, a, now)
}

// checkToken decides a presented token (presented false: none) for access a, once
// the route's own checks passed.
func (p *authPolicy) checkToken(tok string, presented bool, a access, now time.Time) (decision, []error) {
	if !presented {
		return decision{http.StatusUnauthorized, "credentials required"}, nil
	}
	digest := apitoken.Sum(tok)
	var errs []error
	ok, e := p.admin.match(digest, now)
	errs = append(errs, e...)
	if a != accessAdmin {
		okRead, e := p.read.match(digest, now)
		errs = append(errs, e...)
		ok = ok || okRead
	}
	if a == accessOFREP || a == accessOFREPStream {
		hit := 0
		for i := range p.ofrep {
			hit |= subtle.ConstantTimeCompare(p.ofrep[i][:], digest[:])
		}
		ok = ok || hit == 1
	}
	if !ok {
		return decision{http.StatusForbidden, "credentials not valid for this route"}, errs
	}
	return decision{}, errs
}

// openRoute decides a read route that needs no token: open, except that a loopback
// listener answers only requests naming an allowed host (a page that rebinds its own
// name to 127.0.0.1 could otherwise read the snapshot through the browser).
func (p *authPolicy) openRoute(r *http.Request) decision {
	if p.loopback && !p.hostAllowed(r.Host) {
		return decision{http.StatusForbidden, "Host is not in http.allowedHosts (a loopback daemon answers only its own names)"}
	}
	return decision{}
}

// Errors of AuthorizeRead.
var (
	// ErrAuthUnavailable: the http.auth tokens could not be read; nothing is served.
	ErrAuthUnavailable = errors.New("the http.auth tokens could not be read (see the log)")
	// ErrNoCredentials: tokens are configured and the caller presented none.
	ErrNoCredentials = errors.New("credentials required")
	// ErrBadCredentials: the presented token is neither a read nor an admin token.
	ErrBadCredentials = errors.New("credentials not valid")
)

// AuthorizeRead decides a read by a listener that is not HTTP (the flagd sync port)
// with the same tokens and rules as the HTTP read routes: open when no token is
// configured, else a read or admin token. authorization is the caller's
// Authorization value ("Bearer <token>", "" when absent). It never echoes the token.
func (s *Server) AuthorizeRead(authorization string) error {
	p := s.auth.Load()
	if p == nil {
		p = &authPolicy{}
	}
	if p.closed {
		return ErrAuthUnavailable
	}
	if !p.anyTokens() {
		return nil
	}
	r := &http.Request{Header: http.Header{}}
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	tok, presented := apitoken.Credential(r)
	dec, reloadErrs := p.checkToken(tok, presented, accessRead, time.Now())
	for _, err := range reloadErrs {
		s.logger().Warn("http auth: a token file changed but cannot be read; its previous tokens stay valid", "err", err)
	}
	switch dec.code {
	case 0:
		return nil
	case http.StatusUnauthorized:
		return ErrNoCredentials
	}
	return ErrBadCredentials
}
