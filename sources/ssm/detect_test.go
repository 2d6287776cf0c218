package ssm

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/flagsync/flagsync/internal/testsvc"
)

// TestMotoDeleteAndRecreateIsSeenByIncrementalSync: a parameter deleted and created
// again starts over at version 1, so comparing versions alone misses it until the
// next full sync. Its LastModifiedDate tells the two apart.
func TestMotoDeleteAndRecreateIsSeenByIncrementalSync(t *testing.T) {
	m := testsvc.StartMoto(t)
	c := motoClient(t, m)
	put(t, c, "/flags/prod/checkout", "true", types.ParameterTypeString)
	put(t, c, "/flags/prod/other", "true", types.ParameterTypeString)
	src := newMotoSource(t, m, Config{Path: "/flags/prod/"})
	ctx := context.Background()
	if _, err := src.Fetch(ctx); err != nil {
		t.Fatalf("full fetch: %v", err)
	}
	if _, err := c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/flags/prod/checkout")}); err != nil {
		t.Fatal(err)
	}
	put(t, c, "/flags/prod/checkout", "false", types.ParameterTypeString)
	res, err := src.Fetch(ctx)
	if err != nil {
		t.Fatalf("incremental fetch: %v", err)
	}
	st := src.LastStats()
	if st.Full {
		t.Fatal("second fetch was a full sync; the test needs an incremental one")
	}
	if ov := res.Overlays["checkout"]; ov.Value != false || ov.Origin.String() != "ssm:/flags/prod/checkout@1" {
		t.Fatalf("re-created checkout = %+v, want false (the incremental sync kept the deleted parameter's value)", ov)
	}
	if st.Changed != 1 || st.Calls[OpGetParameters] != 1 {
		t.Fatalf("stats = %+v, want 1 changed fetched with 1 GetParameters", st)
	}
	// Nothing changed since: the next incremental sync fetches nothing.
	if _, err := src.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if st := src.LastStats(); st.Changed != 0 || st.Calls[OpGetParameters] != 0 {
		t.Fatalf("no-change stats = %+v, want nothing fetched", st)
	}
}

// slowBackoff is longer than any test deadline: the retry sleeps until the fetch's
// context ends, as the SDK's real backoff (up to 20s) does under a 10s timeout.
type slowBackoff struct{}

func (slowBackoff) BackoffDelay(int, error) (time.Duration, error) { return time.Minute, nil }

// TestThrottlingUntilTheDeadlineNamesTheAWSCode: when the fetch deadline ends the
// retries (in the backoff sleep, or waiting for the client-side rate limit), the
// error still says the store was throttling, not just "context deadline exceeded".
// moto never throttles, so the fake answers ThrottlingException.
func TestThrottlingUntilTheDeadlineNamesTheAWSCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		opts Options
	}{
		{"backoff", Config{Path: "/flags/prod/"}, Options{RetryBackoff: slowBackoff{}}},
		{"rate-limit", Config{Path: "/flags/prod/", RateLimit: 0.1}, Options{RetryBackoff: fastBackoff{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSSM(t)
			seedFake(f, 3)
			f.fail = func(string, int) (int, string, bool) {
				return http.StatusBadRequest, `{"__type":"ThrottlingException","message":"Rate exceeded"}`, true
			}
			src := newTestSource(t, f.srv.URL, tc.cfg, tc.opts)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err := src.Fetch(ctx)
			if err == nil {
				t.Fatal("fetch succeeded against a throttling store")
			}
			t.Logf("error: %v", err)
			if !strings.HasPrefix(err.Error(), "ssm /flags/prod/: ThrottlingException: Rate exceeded (GetParametersByPath") {
				t.Fatalf("err = %v, want it to name ThrottlingException", err)
			}
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ThrottlingException" {
				t.Fatalf("error does not unwrap to the throttling API error: %#v", err)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("error does not say the deadline ended the retries: %v", err)
			}
		})
	}
}
