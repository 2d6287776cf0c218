package flagdsync_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/flagsync/flagsync/daemon"
	"github.com/flagsync/flagsync/flagdsync"
	"github.com/flagsync/flagsync/flagdsync/syncv1"
	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/transport"
)

// env is a real daemon (file source, file output) behind a real flagd sync server on
// a free loopback port; publish writes the flag file and syncs.
type env struct {
	t       *testing.T
	dir     string
	flags   string
	d       *daemon.Daemon
	srv     *daemon.Server
	fs      *flagdsync.Server
	metrics *flagdsync.Metrics
	conn    *grpc.ClientConn
	cli     syncv1.FlagSyncServiceClient
}

func flagDoc(value string) string {
	return fmt.Sprintf("flags:\n  color:\n    state: ENABLED\n    variants: {v: %q}\n    defaultVariant: v\n", value)
}

func newEnv(t *testing.T, extraConfig string, lookupEnv func(string) (string, bool)) *env {
	t.Helper()
	e := startEnv(t, "", extraConfig, lookupEnv)
	e.conn = e.dial(e.fs.Addrs()[0].String())
	e.cli = syncv1.NewFlagSyncServiceClient(e.conn)
	return e
}

// startEnv starts the daemon and the sync server, with syncKeys added to flagdSync
// (e.g. its tls), without a client.
func startEnv(t *testing.T, syncKeys, extraConfig string, lookupEnv func(string) (string, bool)) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	e.flags = filepath.Join(e.dir, "flags.yaml")
	e.write(flagDoc("red"))
	cfg := fmt.Sprintf("flagSetId: test-set\nschedule: \"@every 1h\"\nsources:\n  - {name: git, type: file, path: %q}\noutputs:\n  file: {path: %q}\nflagdSync: {enabled: true, listen: \"127.0.0.1:0\", unixSocket: %q%s}\n%s",
		e.flags, filepath.Join(e.dir, "out.json"), filepath.Join(e.dir, "sync.sock"), syncKeys, extraConfig)
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	c, err := daemon.ParseConfig([]byte(cfg), lookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if e.d, err = daemon.New(c, daemon.Options{Logger: log}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.d.Close)
	e.srv = daemon.NewServer(daemon.NewMetrics())
	e.srv.Set(e.d)
	e.metrics = flagdsync.NewMetrics(nil)
	if e.fs, err = flagdsync.Listen(&c.FlagdSync, e.srv, e.metrics, log); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.fs.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

func (e *env) dial(target string, opts ...grpc.DialOption) *grpc.ClientConn {
	e.t.Helper()
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

func (e *env) write(doc string) {
	e.t.Helper()
	if err := transport.WriteFileAtomic(e.flags, []byte(doc), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// publish writes the flag file and runs a sync that must publish.
func (e *env) publish(value string) {
	e.t.Helper()
	e.write(flagDoc(value))
	rep, err := e.d.Sync(context.Background(), false)
	if err != nil || rep.Result != "published" {
		e.t.Fatalf("sync: %+v %v", rep, err)
	}
}

// colorOf parses a flag configuration and evaluates color with flagsync's evaluator.
func colorOf(t *testing.T, cfg string) string {
	t.Helper()
	set, probs, err := flagset.Load([]byte(cfg))
	if err != nil || len(probs) > 0 {
		t.Fatalf("flag configuration does not load: %v %v\n%s", err, probs, cfg)
	}
	if id := set.FlagSetID(); id != "test-set" {
		t.Errorf("flagSetId %q", id)
	}
	return fmt.Sprint(set.Evaluate("color", flagset.TypeString, "", nil).Value)
}

func recvColor(t *testing.T, s grpc.ServerStreamingClient[syncv1.SyncFlagsResponse]) string {
	t.Helper()
	m, err := s.Recv()
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	if m.SyncContext == nil || len(m.SyncContext.Fields) != 0 {
		t.Errorf("sync_context %v, want present and empty", m.SyncContext)
	}
	return colorOf(t, m.FlagConfiguration)
}

func TestSyncFlagsStreamsEveryPublish(t *testing.T) {
	e := newEnv(t, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A stream opened before the first publish waits for it.
	s, err := e.cli.SyncFlags(ctx, &syncv1.SyncFlagsRequest{ProviderId: "test"})
	if err != nil {
		t.Fatal(err)
	}
	e.publish("red")
	if got := recvColor(t, s); got != "red" {
		t.Fatalf("first snapshot color %q", got)
	}
	e.publish("blue")
	if got := recvColor(t, s); got != "blue" {
		t.Fatalf("after publish color %q", got)
	}
	// A sync that changes nothing sends nothing; the next change arrives next.
	if rep, err := e.d.Sync(context.Background(), false); err != nil || rep.Result != "unchanged" {
		t.Fatalf("sync: %+v %v", rep, err)
	}
	e.publish("green")
	if got := recvColor(t, s); got != "green" {
		t.Fatalf("after an unchanged sync and a publish: %q", got)
	}
	// A stream opened now starts with the current snapshot.
	s2, err := e.cli.SyncFlags(ctx, &syncv1.SyncFlagsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := recvColor(t, s2); got != "green" {
		t.Fatalf("late stream color %q", got)
	}
	if n := metricValue(t, e.metrics.Streams); n != 2 {
		t.Errorf("flagsync_flagd_sync_streams %v, want 2", n)
	}
	if n := metricValue(t, e.metrics.Sent); n != 4 {
		t.Errorf("flagsync_flagd_sync_sent_total %v, want 4", n)
	}
}

func TestFetchAllFlagsAndGetMetadata(t *testing.T) {
	e := newEnv(t, "", nil)
	ctx := context.Background()
	if _, err := e.cli.FetchAllFlags(ctx, &syncv1.FetchAllFlagsRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("before the first publish: %v, want Unavailable", err)
	}
	e.publish("red")
	r, err := e.cli.FetchAllFlags(ctx, &syncv1.FetchAllFlagsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := colorOf(t, r.FlagConfiguration); got != "red" {
		t.Fatalf("color %q", got)
	}
	// The configuration is the snapshot the outputs hold, byte for byte (it has no $evaluators
	// to inline: TestPayloadInlinesRefs).
	if want := string(e.d.Snapshot()); r.FlagConfiguration != want {
		t.Errorf("FetchAllFlags differs from the snapshot:\n%s\n%s", r.FlagConfiguration, want)
	}
	m, err := e.cli.GetMetadata(ctx, &syncv1.GetMetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Metadata == nil || len(m.Metadata.Fields) != 0 {
		t.Errorf("metadata %v, want present and empty", m.Metadata)
	}
}

func TestSelector(t *testing.T) {
	e := newEnv(t, "", nil)
	e.publish("red")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		field, header string
		want          codes.Code
	}{
		{"test-set", "", codes.OK},
		{"flagSetId=test-set", "", codes.OK},
		{"", "test-set", codes.OK},
		{"other", "", codes.NotFound},
		{"", "flagSetId=other", codes.NotFound},
		{"test-set", "other", codes.NotFound}, // the header wins over the field
		{"source=file:flags.json", "", codes.NotFound},
	} {
		cctx := ctx
		if tc.header != "" {
			cctx = metadata.AppendToOutgoingContext(ctx, "Flagd-Selector", tc.header)
		}
		_, err := e.cli.FetchAllFlags(cctx, &syncv1.FetchAllFlagsRequest{Selector: tc.field})
		if status.Code(err) != tc.want {
			t.Errorf("FetchAllFlags field %q header %q: %v, want %v", tc.field, tc.header, err, tc.want)
		}
		s, err := e.cli.SyncFlags(cctx, &syncv1.SyncFlagsRequest{Selector: tc.field})
		if err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != tc.want {
			t.Errorf("SyncFlags field %q header %q: %v, want %v", tc.field, tc.header, err, tc.want)
		}
		if err != nil && !strings.Contains(status.Convert(err).Message(), `"test-set"`) {
			t.Errorf("refusal does not name the flag set served: %v", err)
		}
	}
}

func TestAuthUsesHTTPTokens(t *testing.T) {
	tokens := map[string]string{"READ_TOKEN": "read-token-0123456789", "ADMIN_TOKEN": "admin-token-0123456789"}
	lookup := func(k string) (string, bool) { v, ok := tokens[k]; return v, ok }
	e := newEnv(t, "http: {auth: {read: {env: [READ_TOKEN]}, admin: {env: [ADMIN_TOKEN]}}}\n", lookup)
	e.publish("red")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		auth string
		want codes.Code
	}{
		{"", codes.Unauthenticated},
		{"Bearer wrong-token-0123456789", codes.PermissionDenied},
		{"Bearer read-token-0123456789", codes.OK},
		{"Bearer admin-token-0123456789", codes.OK},
	} {
		cctx := ctx
		if tc.auth != "" {
			cctx = metadata.AppendToOutgoingContext(ctx, "authorization", tc.auth)
		}
		_, err := e.cli.FetchAllFlags(cctx, &syncv1.FetchAllFlagsRequest{})
		if status.Code(err) != tc.want {
			t.Errorf("FetchAllFlags with %q: %v, want %v", tc.auth, err, tc.want)
		}
		_, err = e.cli.GetMetadata(cctx, &syncv1.GetMetadataRequest{})
		if status.Code(err) != tc.want {
			t.Errorf("GetMetadata with %q: %v, want %v", tc.auth, err, tc.want)
		}
		s, err := e.cli.SyncFlags(cctx, &syncv1.SyncFlagsRequest{})
		if err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != tc.want {
			t.Errorf("SyncFlags with %q: %v, want %v", tc.auth, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "0123456789") {
			t.Errorf("refusal echoes the token: %v", err)
		}
	}
	for code, want := range map[codes.Code]float64{codes.Unauthenticated: 3, codes.PermissionDenied: 3} {
		if n := metricValue(t, e.metrics.Refused.WithLabelValues(code.String())); n != want {
			t.Errorf("flagsync_flagd_sync_refused_total{code=%s} %v, want %v", code, n, want)
		}
	}
}

func TestUnixSocket(t *testing.T) {
	e := newEnv(t, "", nil)
	e.publish("red")
	sock := e.fs.Addrs()[1].String()
	cli := syncv1.NewFlagSyncServiceClient(e.dial("unix://" + sock))
	r, err := cli.FetchAllFlags(context.Background(), &syncv1.FetchAllFlagsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := colorOf(t, r.FlagConfiguration); got != "red" {
		t.Fatalf("color %q", got)
	}
	if fi, err := os.Lstat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %s: %v", sock, err)
	}
}

func TestTLS(t *testing.T) {
	files := testsvc.WriteTLSFiles(t, t.TempDir())
	e := startEnv(t, fmt.Sprintf(", tls: {certFile: %q, keyFile: %q}", files.CertFile, files.KeyFile), "", nil)
	e.publish("red")
	ca, err := os.ReadFile(files.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	// grpc-go's TLS client insists on ALPN h2, as other gRPC clients do.
	cli := syncv1.NewFlagSyncServiceClient(e.dial(e.fs.Addrs()[0].String(),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool}))))
	r, err := cli.FetchAllFlags(context.Background(), &syncv1.FetchAllFlagsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := colorOf(t, r.FlagConfiguration); got != "red" {
		t.Fatalf("color %q", got)
	}
	// Plaintext on the TLS port gets nothing.
	plain := syncv1.NewFlagSyncServiceClient(e.dial(e.fs.Addrs()[0].String()))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := plain.FetchAllFlags(ctx, &syncv1.FetchAllFlagsRequest{}); status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("plaintext on the TLS port: %v", err)
	}
}

// metricValue is the value of a gauge or counter.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatal(err)
	}
	if pb.Gauge != nil {
		return pb.Gauge.GetValue()
	}
	return pb.Counter.GetValue()
}

// TestMaxConnections: beyond flagdSync.maxConnections a client waits (in the kernel's
// accept queue) until a connection closes, then is served.
func TestMaxConnections(t *testing.T) {
	e := startEnv(t, ", maxConnections: 2", "", nil)
	e.publish("red")
	addr := e.fs.Addrs()[0].String()
	var held []*grpc.ClientConn
	for range 2 {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := syncv1.NewFlagSyncServiceClient(conn).FetchAllFlags(context.Background(), &syncv1.FetchAllFlagsRequest{}); err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
	}
	third := syncv1.NewFlagSyncServiceClient(e.dial(addr))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := third.FetchAllFlags(ctx, &syncv1.FetchAllFlagsRequest{}, grpc.WaitForReady(true)); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("third connection beyond the cap: %v, want it left waiting", err)
	}
	held[0].Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	if _, err := third.FetchAllFlags(ctx2, &syncv1.FetchAllFlagsRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("after a connection closed: %v", err)
	}
}

// TestOversizedRequestsAreRefused: a selector header or request beyond the limits is
// refused without being served, and the server goes on serving.
func TestOversizedRequestsAreRefused(t *testing.T) {
	e := newEnv(t, "", nil)
	e.publish("red")
	big := strings.Repeat("s", 64<<10)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-padding", big)
	if _, err := e.cli.FetchAllFlags(ctx, &syncv1.FetchAllFlagsRequest{}); err == nil {
		t.Fatal("a 64 KB header was served")
	}
	if _, err := e.cli.FetchAllFlags(context.Background(), &syncv1.FetchAllFlagsRequest{Selector: big}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a 64 KB request: %v, want ResourceExhausted", err)
	}
	if _, err := e.cli.FetchAllFlags(context.Background(), &syncv1.FetchAllFlagsRequest{}); err != nil {
		t.Fatalf("after oversized requests: %v", err)
	}
}
