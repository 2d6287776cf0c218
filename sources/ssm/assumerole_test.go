package ssm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/flagsync/flagsync/internal/testsvc"
)

const testRole = "arn:aws:iam::123456789012:role/flagsync-reader"

// seenRequest is one request that passed the recording proxy.
type seenRequest struct {
	service   string // from the SigV4 credential scope: "ssm", "sts"
	op        string // X-Amz-Target operation (JSON APIs) or Action (query APIs)
	accessKey string // the access key ID the request was signed with
	token     bool   // a session token was sent (temporary credentials)
	form      url.Values
}

// recordingProxy sits in front of moto_server and records every request; with
// denyAssumeRole it answers AssumeRole itself with STS's AccessDenied.
type recordingProxy struct {
	srv            *httptest.Server
	denyAssumeRole bool

	mu   sync.Mutex
	seen []seenRequest
}

const deniedMessage = "User: arn:aws:iam::123456789012:user/flagsync is not authorized to perform: sts:AssumeRole on resource: " + testRole

func newRecordingProxy(t *testing.T, target string, denyAssumeRole bool) *recordingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{denyAssumeRole: denyAssumeRole}
	forward := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		req := seenRequest{token: r.Header.Get("X-Amz-Security-Token") != ""}
		// Authorization: AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/<service>/aws4_request, ...
		if _, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential="); ok {
			scope := strings.Split(strings.SplitN(cred, ",", 2)[0], "/")
			req.accessKey = scope[0]
			if len(scope) == 5 {
				req.service = scope[3]
			}
		}
		if target := r.Header.Get("X-Amz-Target"); target != "" {
			_, req.op, _ = strings.Cut(target, ".")
		} else if form, err := url.ParseQuery(string(body)); err == nil {
			req.form = form
			req.op = form.Get("Action")
		}
		p.mu.Lock()
		p.seen = append(p.seen, req)
		p.mu.Unlock()
		if p.denyAssumeRole && req.op == "AssumeRole" {
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>`+
				deniedMessage+`</Message></Error><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>`)
			return
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// requests returns the recorded requests of one service.
func (p *recordingProxy) requests(service string) []seenRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []seenRequest
	for _, r := range p.seen {
		if r.service == service {
			out = append(out, r)
		}
	}
	return out
}

// checkAssumedOnce asserts the proxy saw exactly one AssumeRole, for the configured
// role and session name, signed with the base (IsolateAWS) credentials.
func checkAssumedOnce(t *testing.T, p *recordingProxy) {
	t.Helper()
	sts := p.requests("sts")
	if len(sts) != 1 || sts[0].op != "AssumeRole" {
		t.Fatalf("STS requests = %+v, want exactly one AssumeRole (credentials cached)", sts)
	}
	if got := sts[0].form.Get("RoleArn"); got != testRole {
		t.Errorf("AssumeRole RoleArn = %q, want %q", got, testRole)
	}
	if got := sts[0].form.Get("RoleSessionName"); got != "flagsync-ssm-test" {
		t.Errorf("AssumeRole RoleSessionName = %q, want flagsync-ssm-test", got)
	}
	if sts[0].accessKey != "testing" || sts[0].token {
		t.Errorf("AssumeRole signed with %q (session token %v), want the base credentials", sts[0].accessKey, sts[0].token)
	}
}

// TestAssumeRoleThroughEndpoint configures roleArn with one endpoint for both APIs (an
// emulator): the role is assumed at that endpoint, once, and every SSM call is signed
// with the assumed role's temporary credentials.
func TestAssumeRoleThroughEndpoint(t *testing.T) {
	m := testsvc.StartMoto(t)
	testsvc.IsolateAWS(t, "us-east-1")
	c := motoClient(t, m)
	put(t, c, "/flags/prod/new_dashboard", `{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"on"}`, types.ParameterTypeString)
	put(t, c, "/flags/prod/team/color", "red", types.ParameterTypeString)
	put(t, c, "/flags/prod/secret_rollout", "true", types.ParameterTypeSecureString)
	put(t, c, "/flags/staging/other", "true", types.ParameterTypeString)
	p := newRecordingProxy(t, m.URL, false)
	src := newTestSource(t, p.srv.URL, Config{Path: "/flags/prod/", RoleARN: testRole}, Options{})
	ctx := context.Background()

	res, err := src.Fetch(ctx)
	if err != nil {
		t.Fatalf("fetch with roleArn: %v", err)
	}
	if len(res.Problems) != 0 || len(res.Definitions) != 1 || res.Definitions["new_dashboard"] == nil ||
		len(res.Overlays) != 2 || res.Overlays["team/color"].Value != "red" || res.Overlays["secret_rollout"].Value != true {
		t.Fatalf("result: definitions %v, overlays %+v, problems %v", res.Definitions, res.Overlays, res.Problems)
	}
	put(t, c, "/flags/prod/team/color", "blue", types.ParameterTypeString)
	res, err = src.Fetch(ctx) // incremental: DescribeParameters + GetParameters
	if err != nil {
		t.Fatalf("second fetch: %v", err)
	}
	if res.Overlays["team/color"].Value != "blue" {
		t.Fatalf("changed parameter not read: %+v", res.Overlays["team/color"])
	}

	checkAssumedOnce(t, p)
	ssmReqs := p.requests("ssm")
	if len(ssmReqs) < 3 {
		t.Fatalf("SSM requests = %+v, want GetParametersByPath, DescribeParameters and GetParameters", ssmReqs)
	}
	for _, r := range ssmReqs {
		// moto hands out assumed-role keys like AWS does: temporary, "ASIA..." plus a
		// session token.
		if !strings.HasPrefix(r.accessKey, "ASIA") || !r.token {
			t.Errorf("SSM %s signed with %q (session token %v), want the assumed role's ASIA... credentials", r.op, r.accessKey, r.token)
		}
	}
	if all := p.requests(""); len(all) != 0 {
		t.Errorf("unsigned or unknown requests: %+v", all)
	}
}

// TestAssumeRoleThroughSTSEndpoint sends AssumeRole to stsEndpoint, not to endpoint.
func TestAssumeRoleThroughSTSEndpoint(t *testing.T) {
	m := testsvc.StartMoto(t)
	testsvc.IsolateAWS(t, "us-east-1")
	put(t, motoClient(t, m), "/flags/prod/beta", "true", types.ParameterTypeString)
	stsProxy := newRecordingProxy(t, m.URL, false)
	ssmProxy := newRecordingProxy(t, m.URL, false)
	src := newTestSource(t, ssmProxy.srv.URL, Config{Path: "/flags/prod/", RoleARN: testRole, STSEndpoint: stsProxy.srv.URL}, Options{})
	res, err := src.Fetch(context.Background())
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if res.Overlays["beta"].Value != true {
		t.Fatalf("overlays = %+v", res.Overlays)
	}
	checkAssumedOnce(t, stsProxy)
	if got := stsProxy.requests("ssm"); len(got) != 0 {
		t.Errorf("SSM requests went to stsEndpoint: %+v", got)
	}
	if got := ssmProxy.requests("sts"); len(got) != 0 {
		t.Errorf("STS requests went to endpoint: %+v", got)
	}
	if got := ssmProxy.requests("ssm"); len(got) != 1 || !strings.HasPrefix(got[0].accessKey, "ASIA") {
		t.Errorf("SSM requests at endpoint = %+v, want one signed with ASIA... credentials", got)
	}
}

// TestAssumeRoleDeniedIsAClearError: when STS refuses the role the fetch fails with
// an error naming the role and STS's reason, and no SSM request is sent.
func TestAssumeRoleDeniedIsAClearError(t *testing.T) {
	m := testsvc.StartMoto(t)
	testsvc.IsolateAWS(t, "us-east-1")
	put(t, motoClient(t, m), "/flags/prod/beta", "true", types.ParameterTypeString)
	p := newRecordingProxy(t, m.URL, true)
	src := newTestSource(t, p.srv.URL, Config{Path: "/flags/prod/", RoleARN: testRole, MaxAttempts: 3}, Options{RetryBackoff: fastBackoff{}})
	res, err := src.Fetch(context.Background())
	want := "ssm /flags/prod/: assuming role " + testRole + ": AccessDenied: " + deniedMessage + " (GetParametersByPath)"
	if err == nil || err.Error() != want {
		t.Fatalf("fetch = %v, %v\nwant error %s", res, err, want)
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDenied" {
		t.Fatalf("error does not unwrap to STS's API error: %#v", err)
	}
	if got := p.requests("ssm"); len(got) != 0 {
		t.Errorf("SSM requests sent without the role's credentials: %+v", got)
	}
	if got := p.requests("sts"); len(got) != 1 {
		t.Errorf("AssumeRole requests = %d, want 1 (AccessDenied is not retried)", len(got))
	}
}
