package daemon

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/transport"
)

// An idle keep-alive connection is closed by the server at idleTimeout, giving its
// slot under maxConnections to the next client.
func TestIdleConnectionsClosedAndSlotsReused(t *testing.T) {
	h := &HTTPConfig{Listen: "127.0.0.1:0", Limits: HTTPLimits{IdleTimeout: 200 * time.Millisecond, MaxConnections: 2}}
	h.Limits.defaults()
	ln, err := Listen(h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(h, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }), slog.New(slog.DiscardHandler))
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	for i := 0; i < 5; i++ { // more clients than slots, one after another
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		resp.Body.Close()
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("client %d: idle connection not closed by the server: %v", i, err)
		}
		c.Close()
	}
}

// The listener serves TLS with the configured pair, picks up a renewed certificate
// without a restart, and keeps serving the previous one when a renewal is broken.
func TestListenerTLSReload(t *testing.T) {
	dir := t.TempDir()
	first := testsvc.WriteTLSFiles(t, t.TempDir())
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	install := func(f testsvc.TLSFiles) {
		t.Helper()
		for src, dst := range map[string]string{f.CertFile: cert, f.KeyFile: key} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := transport.WriteFileAtomic(dst, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(first)
	cfg, err := ParseConfig([]byte(fmt.Sprintf("flagSetId: t\nsources: [{name: e, type: env}]\noutputs: {file: {path: x}}\nhttp:\n  listen: 127.0.0.1:0\n  tls: {certFile: %q, keyFile: %q}\n", cert, key)), lookupFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	ln, err := Listen(&cfg.HTTP, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(&cfg.HTTP, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }), log)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "https://" + ln.Addr().String() + "/"
	trusting := func(ca string) error {
		pool, err := loadCAPool(ca)
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := trusting(first.CAFile); err != nil {
		t.Fatalf("TLS with the configured certificate: %v", err)
	}
	if resp, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil && resp.StatusCode == 200 {
		t.Errorf("plain HTTP served on a TLS listener")
	}
	second := testsvc.WriteTLSFiles(t, t.TempDir())
	install(second)
	deadline := time.Now().Add(30 * time.Second)
	for trusting(second.CAFile) != nil {
		if time.Now().After(deadline) {
			t.Fatal("renewed certificate not served")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if trusting(first.CAFile) == nil {
		t.Error("the old certificate is still served after the renewal")
	}
	// A broken renewal: the previous pair stays, and the log says so.
	if err := os.WriteFile(cert, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(logs.String(), "do not load") {
		if time.Now().After(deadline) {
			t.Fatal("a broken certificate file is not logged")
		}
		_ = trusting(second.CAFile)
		time.Sleep(50 * time.Millisecond)
	}
	if err := trusting(second.CAFile); err != nil {
		t.Errorf("a broken renewal stopped TLS: %v", err)
	}
}

// A connection gives its slot back once, however often it is closed.
func TestCappedListenerReleasesOnce(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &cappedListener{Listener: inner, slots: make(chan struct{}, 2)}
	defer l.Close()
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	a, _ := l.Accept()
	b, _ := l.Accept()
	if len(l.slots) != 2 {
		t.Fatalf("slots in use = %d, want 2", len(l.slots))
	}
	a.Close()
	a.Close()
	if len(l.slots) != 1 {
		t.Errorf("slots in use after closing one connection twice = %d, want 1", len(l.slots))
	}
	b.Close()
	if len(l.slots) != 0 {
		t.Errorf("slots in use = %d, want 0", len(l.slots))
	}
}

// Body and header limits, and a slow body cut at the read timeout, through the
// daemon's server on a real listener.
func TestRequestLimits(t *testing.T) {
	h := newHarness(t, hopts{extra: "http:\n  listen: 127.0.0.1:0\n  limits: {maxBodyBytes: 64, maxHeaderBytes: 4096, readTimeout: 300ms}\n"})
	s := NewServer(h.metrics)
	s.Set(h.d)
	h.mustSync()
	cfg := &h.d.Config().HTTP
	ln, err := Listen(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(cfg, s, slog.New(slog.DiscardHandler))
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	post := func(body string) (int, string) {
		resp, err := http.Post(base+"/ofrep/v1/evaluate/flags/a", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(`{"context":{"targetingKey":"u"}}`); code != 200 {
		t.Errorf("small body = %d %s", code, body)
	}
	if code, body := post(`{"context":{"targetingKey":"` + strings.Repeat("u", 100) + `"}}`); code != http.StatusBadRequest || !strings.Contains(body, "larger than") {
		t.Errorf("body over maxBodyBytes = %d %s", code, body)
	}
	req, _ := http.NewRequest("GET", base+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 8192))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("headers over maxHeaderBytes: %v %v", resp, err)
	}
	// A body that never completes: the server gives up at readTimeout and closes.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a hang fails the test instead of blocking it
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("slow body: the server did not close the connection: %v", err)
	}
	if len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 400") {
		t.Errorf("slow body answered %q", b)
	}
}
