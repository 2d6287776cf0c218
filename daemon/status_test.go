package daemon

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flagsync/flagsync/internal/testsvc"
)

// TestStatusAPICallsFromDaemonState: the status (and the status page built from it)
// counts each source's remote API calls from the daemon's own state, and agrees with
// flagsync_source_api_calls_total, which it no longer reads back.
func TestStatusAPICallsFromDaemonState(t *testing.T) {
	moto := testsvc.StartMoto(t)
	testsvc.IsolateAWS(t, "")
	client := ssm.New(ssm.Options{Region: "us-east-1", BaseEndpoint: aws.String(moto.URL),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	if _, err := client.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String("/flags/beta"),
		Value: aws.String("true"), Type: types.ParameterTypeString}); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, hopts{extraSrc: fmt.Sprintf("  - {name: kv, type: ssm, path: /flags/, region: us-east-1, endpoint: %q}\n", moto.URL)})
	h.writeFlags(`flags:
  beta: {state: ENABLED, variants: {"on": true, "off": false}, defaultVariant: "off"}
`)
	h.mustSync()
	h.mustSync()

	var kv *SourceStatus
	for _, s := range h.d.Status().Sources {
		if s.Name == "kv" {
			kv = &s
		}
	}
	if kv == nil {
		t.Fatalf("no status for source kv: %+v", h.d.Status().Sources)
	}
	counted := testutil.ToFloat64(h.metrics.SourceAPICalls.WithLabelValues("kv", "GetParametersByPath"))
	if kv.APICalls < 2 || float64(kv.APICalls) < counted {
		t.Fatalf("status apiCalls = %d, Prometheus list calls = %v; want at least one call per sync", kv.APICalls, counted)
	}
	_, page := h.d.statusPage()
	for _, s := range page.Sources {
		if s.Name == "kv" && s.APICalls != kv.APICalls {
			t.Fatalf("status page shows %d API calls, the status %d", s.APICalls, kv.APICalls)
		}
	}
}
