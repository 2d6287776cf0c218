package ssm_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/flagsync/flagsync/daemon"
	"github.com/flagsync/flagsync/internal/testsvc"
)

// TestDaemonWithSSMSource configures the ssm source type through the daemon's YAML
// (every key) and checks a sync publishes the parameters, then a changed one.
func TestDaemonWithSSMSource(t *testing.T) {
	m := testsvc.StartMoto(t)
	dir := t.TempDir()
	testsvc.IsolateAWS(t, "")
	client := ssm.New(ssm.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(m.URL),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", ""),
	})
	ctx := context.Background()
	put := func(name, value string, typ types.ParameterType) {
		t.Helper()
		if _, err := client.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: typ, Overwrite: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
	}
	put("/flags/prod/new_dashboard", `{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off"}`, types.ParameterTypeString)
	put("/flags/prod/team/color", "red", types.ParameterTypeSecureString)

	out := filepath.Join(dir, "flags.json")
	yml := fmt.Sprintf(`flagSetId: ssm-e2e
sources:
  - name: prod-ssm
    type: ssm
    timeout: 20s
    path: /flags/prod/
    recursive: true
    decrypt: true
    region: us-east-1
    endpoint: %s
    roleArn: arn:aws:iam::123456789012:role/flagsync-reader
    stsEndpoint: %s
    fullSyncEvery: 2
    rateLimit: 50
    maxAttempts: 3
outputs:
  file:
    path: %s
`, m.URL, m.URL, out)
	cfg, err := daemon.ParseConfig([]byte(yml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	d, err := daemon.New(cfg, daemon.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("daemon: %v", err)
	}
	defer d.Close()
	if _, err := d.Sync(ctx, false); err != nil {
		t.Fatalf("sync: %v", err)
	}
	b, _ := os.ReadFile(out)
	for _, want := range []string{`"new_dashboard"`, `"ssm:/flags/prod/new_dashboard@1"`, `"team/color"`, `"red"`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("snapshot lacks %s:\n%s", want, b)
		}
	}
	put("/flags/prod/new_dashboard", `{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"on"}`, types.ParameterTypeString)
	if _, err := d.Sync(ctx, false); err != nil { // an incremental sync
		t.Fatalf("second sync: %v", err)
	}
	b, _ = os.ReadFile(out)
	if !strings.Contains(string(b), `"defaultVariant":"on"`) || !strings.Contains(string(b), "ssm:/flags/prod/new_dashboard@2") {
		t.Fatalf("changed parameter not published:\n%s", b)
	}

	// A bad key in the configuration is reported with its path.
	bad := strings.Replace(yml, "fullSyncEvery: 2", "fullSyncEvery: -1", 1)
	cfg, err = daemon.ParseConfig([]byte(bad), func(string) (string, bool) { return "", false })
	if err == nil {
		_, err = daemon.New(cfg, daemon.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}
	if err == nil || !strings.Contains(err.Error(), "sources[0].fullSyncEvery") {
		t.Fatalf("bad fullSyncEvery: err = %v", err)
	}
}

// TestDaemonStatusNamesThrottling: a Parameter Store that throttles every request
// past the source's timeout shows in the status as throttling, not as a bare
// "context deadline exceeded". moto never throttles: a small endpoint answers
// ThrottlingException the way SSM does.
func TestDaemonStatusNamesThrottling(t *testing.T) {
	throttling := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"__type":"ThrottlingException","message":"Rate exceeded"}`)
	}))
	defer throttling.Close()
	testsvc.IsolateAWS(t, "")
	yml := fmt.Sprintf(`flagSetId: ssm-throttled
sources:
  - name: prod-ssm
    type: ssm
    timeout: 1s
    path: /flags/prod/
    region: us-east-1
    endpoint: %s
outputs:
  file:
    path: %s
`, throttling.URL, filepath.Join(t.TempDir(), "flags.json"))
	cfg, err := daemon.ParseConfig([]byte(yml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	d, err := daemon.New(cfg, daemon.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("daemon: %v", err)
	}
	defer d.Close()
	if _, err := d.Sync(context.Background(), false); err == nil {
		t.Fatal("sync succeeded with a throttling source")
	}
	st := d.Status()
	if len(st.Sources) != 1 || !strings.Contains(st.Sources[0].LastError, "ssm /flags/prod/: ThrottlingException: Rate exceeded (GetParametersByPath") {
		t.Fatalf("status sources = %+v, want the last error to name ThrottlingException", st.Sources)
	}
	t.Logf("status error: %s", st.Sources[0].LastError)
}
