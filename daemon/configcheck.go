// Checking a decoded configuration: required keys, ranges, combinations, TLS files.

package daemon

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"

	"strconv"
	"strings"
)

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
