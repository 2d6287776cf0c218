package daemon

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
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
