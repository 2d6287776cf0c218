package flagdsync

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/flagsync/flagsync/daemon"
)

// Keepalive settings. flagd clients ping often (some every few seconds, some while no
// stream is open), and a server that refuses such pings closes their connection with
// "too many pings", so almost any rate is allowed. The server pings idle connections
// itself, so a client that vanished (or is stopped) releases its stream.
const (
	minClientPingInterval = 10 * time.Millisecond
	serverPingInterval    = 30 * time.Second
	serverPingTimeout     = 10 * time.Second
	// Per-connection buffers: small, since a connection mostly waits for the next
	// snapshot; 1,000 open streams must fit the daemon's memory budget.
	connBufferBytes = 8 << 10
)

// Server is the flagd sync port: a gRPC server on the TCP listener (and the Unix
// socket) of flagdSync, serving the daemon's current snapshot.
type Server struct {
	grpc *grpc.Server
	lns  []net.Listener
	log  *slog.Logger
}

// Listen opens the listeners of cfg (TCP, with TLS when configured, and the Unix
// socket) and builds the gRPC server for srv's feed and auth; metrics may be nil.
func Listen(cfg *daemon.FlagdSyncConfig, srv *daemon.Server, metrics *Metrics, log *slog.Logger) (*Server, error) {
	s := &Server{log: log}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("flagdSync.listen: %w", err)
	}
	ln = daemon.CapConnections(ln, cfg.MaxConnections)
	if cfg.TLS.On() {
		tc, err := daemon.ReloadingTLS(cfg.TLS, "flagdSync.tls", log)
		if err != nil {
			ln.Close()
			return nil, err
		}
		tc.NextProtos = []string{"h2"} // gRPC clients insist on ALPN h2
		ln = tls.NewListener(ln, tc)
	}
	s.lns = append(s.lns, ln)
	if cfg.UnixSocket != "" {
		uln, err := listenUnix(cfg.UnixSocket)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("flagdSync.unixSocket: %w", err)
		}
		s.lns = append(s.lns, daemon.CapConnections(uln, cfg.MaxConnections))
	}
	s.grpc = grpc.NewServer(
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: minClientPingInterval, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: serverPingInterval, Timeout: serverPingTimeout}),
		grpc.ReadBufferSize(connBufferBytes),
		grpc.WriteBufferSize(connBufferBytes),
		grpc.SharedWriteBuffer(true),
	)
	NewService(srv.Feed(), srv.AuthorizeRead, metrics, log).Register(s.grpc)
	return s, nil
}

// listenUnix listens on path, first removing a socket a crashed daemon left behind
// (never any other kind of file, and never a socket something still answers on).
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another process is serving on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return net.Listen("unix", path)
}

// Addrs are the addresses served (TCP first).
func (s *Server) Addrs() []net.Addr {
	out := make([]net.Addr, len(s.lns))
	for i, ln := range s.lns {
		out[i] = ln.Addr()
	}
	return out
}

// Serve serves every listener until ctx ends, then closes the open streams (clients
// reconnect to the next daemon).
func (s *Server) Serve(ctx context.Context) {
	done := make(chan struct{}, len(s.lns))
	for _, ln := range s.lns {
		go func() {
			if err := s.grpc.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				s.log.Error("flagd sync listener stopped", "addr", ln.Addr().String(), "err", err)
			}
			done <- struct{}{}
		}()
	}
	<-ctx.Done()
	// Open SyncFlags streams never end by themselves, so a graceful stop would wait
	// forever: stop at once.
	s.grpc.Stop()
	for range s.lns {
		<-done
	}
}

func (s *Server) closeListeners() {
	for _, ln := range s.lns {
		ln.Close()
	}
}
