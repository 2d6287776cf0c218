package daemon

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
)

// Defaults of http.limits (docs/CONFIG.md). They keep a daemon reachable by
// untrusted clients within its memory limit: 1024 connections of about 20 KB each.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 15 * time.Second
	DefaultWriteTimeout      = 60 * time.Second // a POST /api/v1/sync answers after the sync
	DefaultIdleTimeout       = 30 * time.Second
	DefaultMaxHeaderBytes    = 16 << 10
	DefaultMaxBodyBytes      = 1 << 20
	DefaultMaxConnections    = 1024
)

// HTTPLimits are the listener's timeouts and size limits; zero picks the default.
type HTTPLimits struct {
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout"`
	// ReadTimeout bounds reading a whole request, body included (slow bodies).
	ReadTimeout time.Duration `yaml:"readTimeout"`
	// WriteTimeout bounds writing a response, from the end of the request headers.
	WriteTimeout time.Duration `yaml:"writeTimeout"`
	// IdleTimeout closes a keep-alive connection that sends no new request.
	IdleTimeout time.Duration `yaml:"idleTimeout"`
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes int `yaml:"maxHeaderBytes"`
	// MaxBodyBytes bounds a request body (413 beyond).
	MaxBodyBytes int64 `yaml:"maxBodyBytes"`
	// MaxConnections caps open connections; more wait in the kernel's accept queue
	// until one closes.
	MaxConnections int `yaml:"maxConnections"`
}

func (l *HTTPLimits) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&l.ReadTimeout, DefaultReadTimeout)
	def(&l.WriteTimeout, DefaultWriteTimeout)
	def(&l.IdleTimeout, DefaultIdleTimeout)
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = DefaultMaxConnections
	}
}

func (l HTTPLimits) maxBody() int64 {
	if l.MaxBodyBytes <= 0 {
		return DefaultMaxBodyBytes
	}
	return l.MaxBodyBytes
}

// ListenTLSConfig serves the listener over TLS.
type ListenTLSConfig struct {
	// CertFile and KeyFile are PEM files (a mounted kubernetes.io/tls Secret). They
	// are read again when they change, so a renewed certificate needs no restart.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
}

// On tells whether TLS is configured.
func (t ListenTLSConfig) On() bool { return t.CertFile != "" || t.KeyFile != "" }

func (h *HTTPConfig) validate() error {
	h.Limits.defaults()
	for name, d := range map[string]time.Duration{"readHeaderTimeout": h.Limits.ReadHeaderTimeout, "readTimeout": h.Limits.ReadTimeout,
		"writeTimeout": h.Limits.WriteTimeout, "idleTimeout": h.Limits.IdleTimeout} {
		if d < 0 {
			return fmt.Errorf("http.limits.%s: must be positive", name)
		}
	}
	if h.Limits.MaxHeaderBytes < 0 || h.Limits.MaxBodyBytes < 0 || h.Limits.MaxConnections < 0 {
		return errors.New("http.limits: maxHeaderBytes, maxBodyBytes and maxConnections must be positive")
	}
	for i, host := range h.AllowedHosts {
		_, _, withPort := net.SplitHostPort(host)
		if strings.TrimSpace(host) == "" || strings.ContainsAny(host, "/ ") || withPort == nil {
			return fmt.Errorf("http.allowedHosts[%d]: %q is not a host name (no scheme, port or path)", i, host)
		}
	}
	if t := h.TLS; t.On() {
		if t.CertFile == "" || t.KeyFile == "" {
			return errors.New("http.tls: certFile and keyFile are both required")
		}
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			return fmt.Errorf("http.tls: %w", err)
		}
	}
	return nil
}

// readAuth reads the tokens of http.auth (lookupEnv resolves auth.*.env).
func (h *HTTPConfig) readAuth(lookupEnv func(string) (string, bool)) error {
	p, err := newAuthPolicy(h, lookupEnv)
	if err != nil {
		return err
	}
	h.auth = p
	return nil
}

// policy is the auth read by ParseConfig (read now from the environment for a
// Config made otherwise).
func (h *HTTPConfig) policy() (*authPolicy, error) {
	if h.auth != nil {
		return h.auth, nil
	}
	return newAuthPolicy(h, nil)
}

// logExposure says at start what the listener serves without credentials: a WARN
// when nothing is protected and the address is reachable from other hosts.
func logExposure(log *slog.Logger, h *HTTPConfig, p *authPolicy) {
	if !p.admin.configured() {
		log.Info("http: admin routes (POST /api/v1/sync, POST /api/v1/release) are off: no http.auth.admin token configured")
	}
	if isLoopbackListen(h.Listen) {
		return
	}
	var open []string
	if !p.anyTokens() {
		open = append(open, "GET /api/v1/snapshot (every flag value, secret-derived ones included)", "GET /api/v1/status", "GET / (status page)")
		if h.OFREP.On() {
			open = append(open, "/ofrep/ (flag evaluation)")
		}
	}
	if !p.anyTokens() || p.openMetrics {
		open = append(open, "GET /metrics")
	}
	if len(open) > 0 {
		log.Warn("http: listening beyond loopback without http.auth tokens; these routes answer anyone who can reach the port (see docs/SECURITY.md)",
			"listen", h.Listen, "open", strings.Join(open, ", "))
	}
}

// isLoopbackListen tells whether a listen address only accepts local connections.
func isLoopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
