package daemon

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
)

// DefaultFlagdSyncListen is flagd's own sync port, where flagd clients look by default.
const DefaultFlagdSyncListen = "127.0.0.1:8015"

// FlagdSyncConfig is flagdSync: the flagd sync protocol (flagd.sync.v1.FlagSyncService)
// on its own listener, for flagd and flagd's in-process providers. It serves the
// current snapshot with the auth of http.auth (read or admin token).
type FlagdSyncConfig struct {
	// Enabled serves the protocol; off by default.
	Enabled bool `yaml:"enabled"`
	// Listen is the TCP address (default DefaultFlagdSyncListen).
	Listen string `yaml:"listen"`
	// UnixSocket also serves on this Unix socket path (optional).
	UnixSocket string `yaml:"unixSocket"`
	// TLS serves the TCP listener over TLS (certificate read again when it changes).
	TLS ListenTLSConfig `yaml:"tls"`
	// MaxConnections caps the open connections of each listener (default
	// DefaultMaxConnections); more wait in the kernel's accept queue.
	MaxConnections int `yaml:"maxConnections"`
}

func (f *FlagdSyncConfig) validate() error {
	if !f.Enabled {
		if f.Listen != "" || f.UnixSocket != "" || f.TLS.On() || f.MaxConnections != 0 {
			return errors.New("flagdSync: listen, unixSocket, tls or maxConnections is set but enabled is false (set enabled: true to serve the flagd sync port)")
		}
		return nil
	}
	if f.Listen == "" {
		f.Listen = DefaultFlagdSyncListen
	}
	if _, _, err := net.SplitHostPort(f.Listen); err != nil {
		return fmt.Errorf("flagdSync.listen: %q is not host:port", f.Listen)
	}
	switch {
	case f.MaxConnections < 0:
		return fmt.Errorf("flagdSync.maxConnections: must be positive, got %d", f.MaxConnections)
	case f.MaxConnections == 0:
		f.MaxConnections = DefaultMaxConnections
	}
	if t := f.TLS; t.On() {
		if t.CertFile == "" || t.KeyFile == "" {
			return errors.New("flagdSync.tls: certFile and keyFile are both required")
		}
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			return fmt.Errorf("flagdSync.tls: %w", err)
		}
	}
	return nil
}
