package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/flagsync/flagsync/internal/testsvc"
)

// webhookReceiver collects the bodies a webhook sink posts.
type webhookReceiver struct {
	mu     sync.Mutex
	bodies []string
}

func (w *webhookReceiver) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.mu.Lock()
	w.bodies = append(w.bodies, string(b))
	w.mu.Unlock()
}

func (w *webhookReceiver) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.bodies, "\n")
}

// TestSecureStringNeverInMessages puts SecureStrings into moto SSM — one that is not a
// variant of the git-defined flag, one that is a definition whose default variant is
// not one of its variants (flagset quotes it), one that becomes a flag of its own (its
// variant name is its value) and one changed after the first publish — and checks
// through the built binary that their content appears in none of: the status JSON,
// the status page, stderr of `sync --once`, the daemon log and the webhook payloads,
// while the snapshot still carries the values applications need.
func TestSecureStringNeverInMessages(t *testing.T) {
	m := testsvc.StartMoto(t)
	testsvc.IsolateAWS(t, "us-east-1")
	client := ssm.New(ssm.Options{Region: "us-east-1", BaseEndpoint: aws.String(m.URL),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	put := func(name, value string, typ types.ParameterType) {
		t.Helper()
		if _, err := client.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String(name),
			Value: aws.String(value), Type: typ, Overwrite: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
	}
	put("/flags/prod/color", "TOPSECRET-not-a-variant", types.ParameterTypeSecureString)
	put("/flags/prod/vault", `{"state":"ENABLED","variants":{"TOPSECRET-variant-name":"TOPSECRET-variant-value","b":"x"},"defaultVariant":"TOPSECRET-default"}`, types.ParameterTypeSecureString)
	put("/flags/prod/apikey", "TOPSECRET-static-value", types.ParameterTypeSecureString)
	put("/flags/prod/plain", "visible-plain-value", types.ParameterTypeString)

	hook := &webhookReceiver{}
	hookSrv := httptest.NewServer(hook)
	defer hookSrv.Close()

	bin := buildFlagsync(t)
	e := newE2E(t, bin, false, "")
	e.writeFlags("flags:\n  color:\n    state: ENABLED\n    variants: {red: red, blue: blue}\n    defaultVariant: red\n")
	cfg := fmt.Sprintf(`flagSetId: secrets
schedule: "@every 1h"
sources:
  - {name: git, type: file, path: %q}
  - {name: vault, type: ssm, path: /flags/prod/, region: us-east-1, endpoint: %q}
outputs:
  file: {path: %q}
http: {listen: %q}
log: {level: debug}
notify:
  webhooks:
    - {name: audit, url: %q, maxAttempts: 1}
`, e.flags, m.URL, e.out, e.listen, hookSrv.URL)
	e.writeConfig(cfg)

	assertNoSecret := func(what, text string) {
		t.Helper()
		if strings.Contains(text, "TOPSECRET") {
			i := strings.Index(text, "TOPSECRET")
			t.Errorf("%s shows SecureString content: …%s…", what, text[max(0, i-200):min(len(text), i+100)])
		}
	}

	// sync --once: its stderr lists the flag problems.
	code, stdout, stderr := runCLI(t, bin, e.dir, "sync", "--once", "--config", e.config)
	t.Logf("sync --once exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	assertNoSecret("stderr of sync --once", stderr)
	assertNoSecret("stdout of sync --once", stdout)
	for _, want := range []string{"flags.vault.defaultVariant", "flags.color", "details withheld"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr of sync --once does not name the problem %q", want)
		}
	}
	snap, err := os.ReadFile(e.out)
	if err != nil {
		t.Fatal(err)
	}
	// The snapshot is the data: applications get the secret value.
	if !strings.Contains(string(snap), "TOPSECRET-static-value") || !strings.Contains(string(snap), "visible-plain-value") {
		t.Fatalf("snapshot lacks the SecureString-derived flag:\n%s", snap)
	}
	_ = os.Remove(e.out) // the daemon publishes (and notifies) afresh

	p := e.start()
	p.waitReady()
	eventually(t, "webhook payload", func() bool { return strings.Contains(hook.all(), `"apikey"`) })
	// A change of a SecureString after the first publish: old and new values.
	put("/flags/prod/apikey", "TOPSECRET-rotated-value", types.ParameterTypeSecureString)
	put("/flags/prod/plain", "visible-plain-changed", types.ParameterTypeString)
	// With no admin token configured, the sync route is refused.
	resp, err := http.Post(p.http+"/api/v1/sync", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /api/v1/sync with no admin token configured = %d, want 403", resp.StatusCode)
	}
	// The schedule is an hour: SIGHUP reloads, and the new pipeline syncs at once.
	// Its previous snapshot is read back from the file, which does not say which
	// flags were secret, so the old states of all SSM flags are withheld.
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); strings.Count(hook.all(), `"kind":"changed"`) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no webhook payload of the change\n%s\n%s", p.out.String(), hook.all())
		}
	}

	st := httpGet(t, p.http+"/api/v1/status", "")
	page := httpGet(t, p.http+"/", "")
	assertNoSecret("status JSON", st)
	assertNoSecret("status page", page)
	assertNoSecret("daemon log", p.out.String())
	assertNoSecret("webhook payloads", hook.all())
	if !strings.Contains(page, `id="flag-apikey"`) || !strings.Contains(page, "(secret: redacted)") {
		t.Errorf("status page does not list the secret flag as redacted")
	}
	if !strings.Contains(hook.all(), `\u003credacted: secret\u003e`) || !strings.Contains(hook.all(), "visible-plain-value") {
		t.Errorf("webhook payloads do not redact only the secret flags:\n%s", hook.all())
	}
	var status struct {
		FlagErrors []struct{ Flag, Path, Message string } `json:"flagErrors"`
	}
	if err := json.Unmarshal([]byte(st), &status); err != nil {
		t.Fatal(err)
	}
	flagged := map[string]bool{}
	for _, fe := range status.FlagErrors {
		flagged[fe.Flag] = true
	}
	if !flagged["vault"] || !flagged["color"] {
		t.Errorf("status flagErrors do not name the secret flags' problems: %s", st)
	}
	// The event is queued before the outputs are written: wait for the file.
	eventually(t, "the rotated SecureString value in the snapshot", func() bool {
		snap, _ := os.ReadFile(e.out)
		return strings.Contains(string(snap), "TOPSECRET-rotated-value")
	})
}

// httpGet returns the body of a GET (with token as a bearer token when not empty),
// failing the test on anything but 200.
func httpGet(t *testing.T, url, token string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}
