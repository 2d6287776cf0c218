package daemon

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/transport"
)

// tlsHarness is a daemon with a file output and a Redis output over TLS, its
// outputs.redis.tls keys given as YAML flow-mapping content.
func tlsHarness(t *testing.T, r *testsvc.Redis, tlsKeys string) *harness {
	t.Helper()
	h := bareHarness(t, "flags.json", "a", "b")
	cfg := fmt.Sprintf(`flagSetId: test
sources:
  - {name: git, type: file, path: %q}
outputs:
  file: {path: %q}
  redis:
    url: %q
    tls: {%s}
`, h.flags, h.out, r.URL(), tlsKeys)
	h.d = h.build(cfg, hopts{})
	return h
}

func redisStatus(t *testing.T, d *Daemon) OutputStatus {
	t.Helper()
	for _, o := range d.Status().Outputs {
		if o.Name == "redis" {
			return o
		}
	}
	t.Fatalf("no redis output in status %+v", d.Status())
	return OutputStatus{}
}

// tlsClient reads the TLS Redis independently of the daemon, trusting its CA.
func tlsClient(t *testing.T, r *testsvc.Redis) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	opts.TLSConfig = r.ClientTLSConfig()
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRedisOutputOverTLS(t *testing.T) {
	r := testsvc.StartRedis(t, testsvc.WithTLS())
	for _, tc := range []struct{ name, keys string }{
		{"caFile", fmt.Sprintf("caFile: %q", r.TLS.CAFile)},
		{"caFile+serverName", fmt.Sprintf("caFile: %q, serverName: localhost", r.TLS.CAFile)},
		{"insecureSkipVerify", "insecureSkipVerify: true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tlsHarness(t, r, tc.keys)
			prefix := "flagsync:test"
			rc := tlsClient(t, r)
			ctx := context.Background()
			k, old := transport.KeysFor(prefix), transport.LegacyKeysFor(prefix)
			if err := rc.Del(ctx, k.Snapshot, k.Revision, k.Generation, old.Snapshot, old.Revision, old.Generation).Err(); err != nil {
				t.Fatal(err)
			}
			rep := h.mustSync()
			if rep.Result != "published" || rep.Flags != 2 {
				t.Fatalf("report = %+v", rep)
			}
			if st := redisStatus(t, h.d); !st.UpToDate || st.LastError != "" || !strings.HasPrefix(st.Target, "rediss://127.0.0.1:") {
				t.Fatalf("redis status = %+v", st)
			}
			got, err := transport.Read(ctx, rc, prefix)
			if err != nil {
				t.Fatalf("read over TLS: %v", err)
			}
			want, err := os.ReadFile(h.out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("redis snapshot differs from the file:\n%s\n%s", got, want)
			}
		})
	}
}

func TestRedisOutputTLSVerificationFails(t *testing.T) {
	r := testsvc.StartRedis(t, testsvc.WithTLS())
	other := testsvc.WriteTLSFiles(t, t.TempDir())
	for _, tc := range []struct{ name, keys, wantErr string }{
		{"wrong CA", fmt.Sprintf("caFile: %q", other.CAFile), "certificate signed by unknown authority"},
		{"wrong serverName", fmt.Sprintf("caFile: %q, serverName: redis.invalid", r.TLS.CAFile), "not redis.invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tlsHarness(t, r, tc.keys)
			_, err := h.sync(false)
			if err == nil {
				t.Fatal("sync succeeded although Redis's certificate must not verify")
			}
			st := redisStatus(t, h.d)
			t.Logf("sync error: %v; status lastError: %s", err, st.LastError)
			if st.UpToDate || !strings.Contains(st.LastError, tc.wantErr) {
				t.Fatalf("redis status = %+v, want lastError containing %q", st, tc.wantErr)
			}
			// The file output is not held back by Redis.
			if n := fileFlags(h.out); n != 2 {
				t.Fatalf("file output has %d flags, want 2", n)
			}
			// Nothing reached Redis.
			if _, err := transport.Read(context.Background(), tlsClient(t, r), "flagsync:test"); err == nil {
				t.Fatal("a snapshot reached Redis without a verified certificate")
			}
		})
	}
}

func TestRedisTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := testsvc.WriteTLSFiles(t, dir).CAFile
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ url, tls, want string }{
		{"redis://127.0.0.1:6379/0", fmt.Sprintf("{caFile: %q}", ca), "outputs.redis.tls: needs a rediss:// url"},
		{"unix:///tmp/redis.sock", "{insecureSkipVerify: true}", "outputs.redis.tls: needs a rediss:// url"},
		{"rediss://127.0.0.1:6379/0", fmt.Sprintf("{caFile: %q}", filepath.Join(dir, "missing.pem")), "outputs.redis.tls.caFile: "},
		{"rediss://127.0.0.1:6379/0", fmt.Sprintf("{caFile: %q}", notPEM), "outputs.redis.tls.caFile: " + notPEM + " holds no PEM certificate"},
		{"rediss://127.0.0.1:6379/0", fmt.Sprintf("{caFile: %q, insecureSkipVerify: true}", ca), "outputs.redis.tls.insecureSkipVerify:"},
		{"rediss://127.0.0.1:6379/0", "{caFIle: x}", "outputs.redis.tls.caFIle"},
		{"rediss://127.0.0.1:6379/0", "{insecureSkipVerify: maybe}", "outputs.redis.tls.insecureSkipVerify"},
	} {
		cfg := fmt.Sprintf("flagSetId: test\nsources:\n  - {name: e, type: env}\noutputs:\n  redis: {url: %q, tls: %s}\n", tc.url, tc.tls)
		_, err := ParseConfig([]byte(cfg), lookupFrom(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("tls %s with %s: err = %v, want %q", tc.tls, tc.url, err, tc.want)
		}
	}
	// Valid: a rediss URL with a CA, and no tls keys at all.
	for _, tls := range []string{fmt.Sprintf("{caFile: %q, serverName: redis.internal}", ca), "{}"} {
		cfg := fmt.Sprintf("flagSetId: test\nsources:\n  - {name: e, type: env}\noutputs:\n  redis: {url: \"rediss://127.0.0.1:6379/0\", tls: %s}\n", tls)
		c, err := ParseConfig([]byte(cfg), lookupFrom(nil))
		if err != nil {
			t.Fatalf("tls %s: %v", tls, err)
		}
		opts, err := redisURLOptions(c.Outputs.Redis)
		if err != nil {
			t.Fatal(err)
		}
		if tls == "{}" && (opts.TLSConfig == nil || opts.TLSConfig.RootCAs != nil || opts.TLSConfig.ServerName != "127.0.0.1") {
			t.Errorf("default rediss TLS config = %+v", opts.TLSConfig)
		}
		if tls != "{}" && (opts.TLSConfig.RootCAs == nil || opts.TLSConfig.ServerName != "redis.internal" || opts.TLSConfig.InsecureSkipVerify) {
			t.Errorf("tls %s: TLS config = %+v", tls, opts.TLSConfig)
		}
	}
}
