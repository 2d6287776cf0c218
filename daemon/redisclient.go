package daemon

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timeouts of the Redis output's connections: fail fast when Redis is down, since
// the file output must not wait on it and the catch-up loop retries with backoff.
const (
	redisDialTimeout  = 2 * time.Second
	redisReadTimeout  = 3 * time.Second
	redisWriteTimeout = 3 * time.Second
)

// newRedisClient connects the Redis output (and the Redis elector, which must talk
// to the same Redis) as configured: one server, a Sentinel-managed master, or a
// cluster. Errors name the key and never carry a password.
func newRedisClient(c *RedisOutputConfig) (redis.UniversalClient, error) {
	if c.URL != "" {
		opts, err := redisURLOptions(c)
		if err != nil {
			return nil, err
		}
		return redis.NewClient(opts), nil
	}
	tlsConf, err := c.TLS.clientConfig(nil)
	if err != nil {
		return nil, err
	}
	if s := c.Sentinel; s != nil {
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:       s.MasterName,
			SentinelAddrs:    s.Addresses,
			SentinelUsername: s.Username,
			SentinelPassword: s.Password,
			Username:         c.Username,
			Password:         c.Password,
			DB:               c.DB,
			TLSConfig:        tlsConf,
			DialTimeout:      redisDialTimeout,
			ReadTimeout:      redisReadTimeout,
			WriteTimeout:     redisWriteTimeout,
			MaxRetries:       1,
		}), nil
	}
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:        c.Cluster.Addresses,
		Username:     c.Username,
		Password:     c.Password,
		TLSConfig:    tlsConf,
		DialTimeout:  redisDialTimeout,
		ReadTimeout:  redisReadTimeout,
		WriteTimeout: redisWriteTimeout,
		// A redirect (MOVED/ASK) during a slot migration costs a retry.
		MaxRedirects: 3,
	}), nil
}

// redisURLOptions are the client options of a url-configured Redis output.
func redisURLOptions(c *RedisOutputConfig) (*redis.Options, error) {
	opts, err := redis.ParseURL(c.URL)
	if err != nil {
		msg := err.Error()
		if u, perr := url.Parse(c.URL); perr == nil {
			if pw, ok := u.User.Password(); ok && pw != "" {
				msg = strings.ReplaceAll(msg, pw, "xxxxx") // errors may quote the URL
			}
		}
		return nil, fmt.Errorf("outputs.redis.url: %s", msg)
	}
	// go-redis sets TLSConfig exactly for rediss:// (ServerName = the URL's host);
	// validate rejects tls keys for other schemes.
	if opts.TLSConfig != nil {
		if opts.TLSConfig, err = c.TLS.clientConfig(opts.TLSConfig); err != nil {
			return nil, err
		}
	}
	opts.DialTimeout = redisDialTimeout
	opts.ReadTimeout = redisReadTimeout
	opts.WriteTimeout = redisWriteTimeout
	opts.MaxRetries = 1
	return opts, nil
}

// clientConfig applies the tls keys to base (nil: a new configuration when TLS is
// enabled, else nil for plain connections).
func (t RedisTLSConfig) clientConfig(base *tls.Config) (*tls.Config, error) {
	if base == nil {
		if !t.Enabled {
			return nil, nil
		}
		base = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if t.CAFile != "" {
		// Read here, not kept from validation: the config holds only values that
		// compare across reloads.
		pool, err := loadCAPool(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("outputs.redis.tls.caFile: %w", err)
		}
		base.RootCAs = pool
	}
	if t.ServerName != "" {
		base.ServerName = t.ServerName
	}
	if t.InsecureSkipVerify {
		base.InsecureSkipVerify = true
	}
	return base, nil
}
