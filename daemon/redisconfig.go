package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/flagsync/flagsync/transport"
)

// validate checks the Redis output's keys and fills in the defaults (prefix,
// legacyKeys). Errors name the key and never echo a password.
func (r *RedisOutputConfig) validate(flagSetID string) error {
	modes := 0
	for _, set := range []bool{r.URL != "", r.Sentinel != nil, r.Cluster != nil} {
		if set {
			modes++
		}
	}
	switch {
	case modes == 0:
		return errors.New("outputs.redis: one of url (one server), sentinel or cluster is required (url: redis://[:password@]host:port/db or rediss://...)")
	case modes > 1:
		return errors.New("outputs.redis: set only one of url, sentinel and cluster")
	}
	scheme := "rediss"
	if r.URL != "" {
		u, err := url.Parse(r.URL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			// Never echo the URL: it may carry a password.
			return errors.New("outputs.redis.url: must be a redis://, rediss:// or unix:// URL")
		}
		if r.Username != "" || r.Password != "" || r.DB != 0 {
			return errors.New("outputs.redis.username/password/db: only with sentinel or cluster; put them in the url (redis://user:password@host:port/db)")
		}
		if r.TLS.Enabled {
			return errors.New("outputs.redis.tls.enabled: only with sentinel or cluster; with a url, rediss:// turns TLS on")
		}
		scheme = u.Scheme
	} else if !r.TLS.Enabled {
		scheme = "redis"
	}
	if s := r.Sentinel; s != nil {
		if s.MasterName == "" {
			return errors.New("outputs.redis.sentinel.masterName: required (the name the sentinels monitor)")
		}
		if err := validateAddrs("outputs.redis.sentinel.addresses", s.Addresses); err != nil {
			return err
		}
	}
	if c := r.Cluster; c != nil {
		if err := validateAddrs("outputs.redis.cluster.addresses", c.Addresses); err != nil {
			return err
		}
		if r.DB != 0 {
			return errors.New("outputs.redis.db: Redis Cluster has only database 0")
		}
	}
	if err := r.TLS.validate(scheme); err != nil {
		return err
	}
	if r.Prefix == "" {
		r.Prefix = transport.DefaultPrefix(flagSetID)
	}
	if err := transport.ValidatePrefix("outputs.redis.prefix", r.Prefix); err != nil {
		return err
	}
	// The old names of an untagged prefix span several cluster slots, so they can
	// only be written on one server or a Sentinel-managed master.
	separate := !transport.HasHashTag(r.Prefix)
	switch {
	case r.LegacyKeys == nil:
		on := separate && r.Cluster == nil
		r.LegacyKeys = &on
	case *r.LegacyKeys && r.Cluster != nil && separate:
		return fmt.Errorf("outputs.redis.legacyKeys: the old key names (%s) span several cluster slots and cannot be written atomically; "+
			"readers on a cluster already use hash-tagged names (%s), so leave legacyKeys off", transport.LegacyKeysFor(r.Prefix).Snapshot, transport.KeysFor(r.Prefix).Snapshot)
	}
	return nil
}

func validateAddrs(field string, addrs []string) error {
	if len(addrs) == 0 {
		return fmt.Errorf("%s: at least one host:port is required", field)
	}
	for i, a := range addrs {
		if strings.Contains(a, "@") {
			// Never echo it: user:password@host is a likely mistake here.
			return fmt.Errorf("%s[%d]: must be host:port without credentials (set username/password instead)", field, i)
		}
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return fmt.Errorf("%s[%d]: %q is not host:port", field, i, a)
		}
	}
	return nil
}

// redisTarget describes the Redis output for logs and status, without passwords.
func redisTarget(r *RedisOutputConfig) string {
	var where string
	switch {
	case r.Sentinel != nil:
		where = fmt.Sprintf("sentinel master %s via %s", r.Sentinel.MasterName, strings.Join(r.Sentinel.Addresses, ","))
	case r.Cluster != nil:
		where = "cluster " + strings.Join(r.Cluster.Addresses, ",")
	default:
		where = RedactedRedisURL(r.URL)
	}
	return where + " prefix " + r.Prefix
}
