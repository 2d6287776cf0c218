package testsvc

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestRedisTLS(t *testing.T) {
	r := StartRedis(t, WithTLS())
	if !strings.HasPrefix(r.URL(), "rediss://127.0.0.1:") || r.TLS == nil {
		t.Fatalf("URL %q, TLS %v", r.URL(), r.TLS)
	}
	ctx := context.Background()
	opts, err := redis.ParseURL(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	opts.TLSConfig = r.ClientTLSConfig()
	c := redis.NewClient(opts)
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("set over TLS: %v", err)
	}
	// Survives a restart with the same certificates.
	r.Stop()
	r.Start()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping after restart: %v", err)
	}

	// Plain text is refused on the TLS port.
	plain := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Fatal("plain-text ping succeeded on the TLS port")
	}
	// A client trusting another CA fails verification.
	other := WriteTLSFiles(t, t.TempDir())
	wrong := &Redis{t: t, TLS: &other}
	bad := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, TLSConfig: wrong.ClientTLSConfig()})
	defer bad.Close()
	err = bad.Ping(ctx).Err()
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("ping with the wrong CA: %v", err)
	}
}
