package daemon

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Listen opens the http.listen address with the connection cap of http.limits and,
// with http.tls, TLS whose certificate is read again when its files change.
func Listen(h *HTTPConfig, log *slog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", h.Listen)
	if err != nil {
		return nil, err
	}
	ln = CapConnections(ln, h.Limits.MaxConnections)
	if h.TLS.On() {
		cfg, err := ReloadingTLS(h.TLS, "http.tls", log)
		if err != nil {
			ln.Close()
			return nil, err
		}
		ln = tls.NewListener(ln, cfg)
	}
	return ln, nil
}

// NewHTTPServer is the http.Server for handler with the timeouts and header limit of
// http.limits.
func NewHTTPServer(h *HTTPConfig, handler http.Handler, log *slog.Logger) *http.Server {
	l := h.Limits
	l.defaults()
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		// TLS handshake failures and the like: debug, they are the client's business.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	if s, ok := handler.(*Server); ok {
		// Shutdown waits for every handler; OFREP event streams end only when told.
		srv.RegisterOnShutdown(s.CloseStreams)
	}
	return srv
}

// CapConnections holds at most n connections of ln open (n ≤ 0: no cap); see
// cappedListener.
func CapConnections(ln net.Listener, n int) net.Listener {
	if n <= 0 {
		return ln
	}
	return &cappedListener{Listener: ln, slots: make(chan struct{}, n)}
}

// cappedListener holds at most cap(slots) connections open: Accept waits for one to
// close, leaving further clients in the kernel's accept queue, so a flood of idle
// connections costs the daemon no memory beyond the cap.
type cappedListener struct {
	net.Listener
	slots chan struct{}
}

func (l *cappedListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &slotConn{Conn: c, release: func() { <-l.slots }}, nil
}

// slotConn gives its slot back once, on the first Close.
type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// ReloadingTLS serves the certificate of t, read again (at most once a second, on
// a handshake) when the files change; a broken renewal keeps the previous pair and is
// logged.
func ReloadingTLS(t ListenTLSConfig, key string, log *slog.Logger) (*tls.Config, error) {
	w, err := newWatchedFiles(func(b [][]byte) (*tls.Certificate, error) {
		c, err := tls.X509KeyPair(b[0], b[1])
		return &c, err
	}, t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			c, err := w.get(time.Now())
			if err != nil {
				log.Error(key+": the certificate files changed but do not load; serving the previous certificate", "err", err)
			}
			return c, nil
		},
	}, nil
}
