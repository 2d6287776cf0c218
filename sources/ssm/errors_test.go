package ssm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/flagsync/flagsync/internal/testsvc"
)

// fastBackoff keeps retry tests quick; the SDK's own backoff is exponential with jitter.
type fastBackoff struct{}

func (fastBackoff) BackoffDelay(int, error) (time.Duration, error) { return time.Millisecond, nil }

func seedFake(f *fakeSSM, n int) {
	for i := range n {
		f.put(fmt.Sprintf("/flags/prod/f%04d", i), "true")
	}
}

// TestAPICallsAtAWSPageSizes checks the call budget with AWS's documented paging:
// 1,000 parameters = 100 GetParametersByPath pages for a full sync, 20
// DescribeParameters pages for an incremental one, and one GetParameters call for up
// to 10 changed names.
func TestAPICallsAtAWSPageSizes(t *testing.T) {
	f := newFakeSSM(t)
	seedFake(f, 1000)
	src := newTestSource(t, f.srv.URL, Config{Path: "/flags/prod/"}, Options{})
	ctx := context.Background()

	if _, err := src.Fetch(ctx); err != nil {
		t.Fatalf("full: %v", err)
	}
	if st := src.LastStats(); !st.Full || st.Calls[OpGetParametersByPath] != 100 || st.Parameters != 1000 {
		t.Fatalf("full stats = %+v, want 100 GetParametersByPath for 1000", st)
	}
	if _, err := src.Fetch(ctx); err != nil {
		t.Fatalf("incremental: %v", err)
	}
	if st := src.LastStats(); st.Full || st.Calls[OpDescribeParameters] != 20 || len(st.Calls) != 1 {
		t.Fatalf("no-change stats = %+v, want exactly 20 DescribeParameters", st)
	}
	f.put("/flags/prod/f0010", "false")
	f.put("/flags/prod/f0020", "false")
	f.put("/flags/prod/new", "on")
	f.del("/flags/prod/f0030")
	res, err := src.Fetch(ctx)
	if err != nil {
		t.Fatalf("incremental after changes: %v", err)
	}
	st := src.LastStats()
	if st.Calls[OpDescribeParameters] != 20 || st.Calls[OpGetParameters] != 1 || st.Changed != 3 || st.Deleted != 1 {
		t.Fatalf("stats = %+v, want 20 DescribeParameters + 1 GetParameters, 3 changed, 1 deleted", st)
	}
	if res.Overlays["f0010"].Value != false || res.Overlays["new"].Value != "on" || len(res.Overlays) != 1000 {
		t.Fatalf("result after changes: f0010=%+v new=%+v n=%d", res.Overlays["f0010"], res.Overlays["new"], len(res.Overlays))
	}
	if got := f.hitCount("DescribeParameters"); got != 40 {
		t.Fatalf("server saw %d DescribeParameters requests, want 40", got)
	}
}

func TestThrottlingIsRetried(t *testing.T) {
	f := newFakeSSM(t)
	seedFake(f, 5)
	f.fail = func(op string, attempt int) (int, string, bool) {
		if attempt <= 2 {
			return http.StatusBadRequest, `{"__type":"ThrottlingException","message":"Rate exceeded"}`, true
		}
		return 0, "", false
	}
	src := newTestSource(t, f.srv.URL, Config{Path: "/flags/prod/"}, Options{RetryBackoff: fastBackoff{}})
	res, err := src.Fetch(context.Background())
	if err != nil {
		t.Fatalf("fetch after 2 throttles: %v", err)
	}
	if len(res.Overlays) != 5 {
		t.Fatalf("overlays = %d, want 5", len(res.Overlays))
	}
	if got := f.hitCount("GetParametersByPath"); got != 3 {
		t.Fatalf("requests = %d, want 3 (2 throttled + 1 retry that succeeded)", got)
	}
	if st := src.LastStats(); st.Calls[OpGetParametersByPath] != 1 {
		t.Fatalf("stats count retries as calls: %+v", st)
	}
}

func TestThrottlingPastRetriesIsAClearError(t *testing.T) {
	f := newFakeSSM(t)
	f.fail = func(string, int) (int, string, bool) {
		return http.StatusBadRequest, `{"__type":"ThrottlingException","message":"Rate exceeded"}`, true
	}
	src := newTestSource(t, f.srv.URL, Config{Path: "/flags/prod/", MaxAttempts: 3}, Options{RetryBackoff: fastBackoff{}})
	_, err := src.Fetch(context.Background())
	want := "ssm /flags/prod/: ThrottlingException: Rate exceeded (GetParametersByPath, gave up after 3 attempts)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if got := f.hitCount("GetParametersByPath"); got != 3 {
		t.Fatalf("requests = %d, want 3 attempts", got)
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ThrottlingException" {
		t.Fatalf("error does not unwrap to the API error: %#v", err)
	}
}

func TestAccessDeniedIsAClearErrorAndKeepsTheLastGoodView(t *testing.T) {
	f := newFakeSSM(t)
	seedFake(f, 3)
	src := newTestSource(t, f.srv.URL, Config{Path: "/flags/prod/"}, Options{RetryBackoff: fastBackoff{}})
	ctx := context.Background()
	if _, err := src.Fetch(ctx); err != nil {
		t.Fatalf("first fetch: %v", err)
	}
	denied := "User: arn:aws:iam::123456789012:user/flagsync is not authorized to perform: ssm:DescribeParameters"
	f.fail = func(op string, _ int) (int, string, bool) {
		return http.StatusBadRequest, `{"__type":"AccessDeniedException","message":"` + denied + `"}`, true
	}
	_, err := src.Fetch(ctx)
	want := "ssm /flags/prod/: AccessDeniedException: " + denied + " (DescribeParameters)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if got := f.hitCount("DescribeParameters"); got != 1 {
		t.Fatalf("AccessDenied was retried: %d requests", got)
	}
	// Once access is back, the next fetch continues from the last good view: an
	// incremental sync with nothing to fetch.
	f.fail = nil
	res, err := src.Fetch(ctx)
	if err != nil {
		t.Fatalf("fetch after recovery: %v", err)
	}
	if st := src.LastStats(); st.Full || st.Calls[OpGetParameters] != 0 || len(res.Overlays) != 3 {
		t.Fatalf("after recovery: stats %+v, %d overlays", st, len(res.Overlays))
	}
}

func TestDeletedBetweenListingAndGet(t *testing.T) {
	f := newFakeSSM(t)
	seedFake(f, 2)
	src := newTestSource(t, f.srv.URL, Config{Path: "/flags/prod/"}, Options{})
	ctx := context.Background()
	if _, err := src.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	f.put("/flags/prod/f0001", "false")
	// The parameter vanishes after DescribeParameters listed it: GetParameters reports
	// it in InvalidParameters and it must simply be gone.
	f.fail = func(op string, _ int) (int, string, bool) {
		if op == "GetParameters" {
			f.mu.Lock()
			delete(f.params, "/flags/prod/f0001")
			f.mu.Unlock()
		}
		return 0, "", false
	}
	res, err := src.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Overlays["f0001"]; ok || len(res.Overlays) != 1 {
		t.Fatalf("overlays = %+v, want only f0000", res.Overlays)
	}
}

func TestLimiterSpacesRequests(t *testing.T) {
	l := newLimiter(100, 5) // 10ms apart after a burst of 5
	ctx := context.Background()
	start := time.Now()
	for range 15 {
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// 5 at once, then 10 more at 10ms each: never faster than 100ms (an upper
	// bound would be a timing assertion; only the lower bound is a property).
	if el := time.Since(start); el < 95*time.Millisecond {
		t.Fatalf("15 requests at 100/s with burst 5 took %s, want >= 100ms", el)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for range 20 {
		if err := l.Wait(cctx); err != nil {
			if !strings.Contains(err.Error(), "canceled") {
				t.Fatalf("err = %v", err)
			}
			return
		}
	}
	t.Fatal("Wait never reported the cancelled context")
}

func TestNetworkErrorIsAnError(t *testing.T) {
	dead := "http://127.0.0.1:" + fmt.Sprint(testsvc.FreePort(t))
	src := newTestSource(t, dead, Config{Path: "/flags/prod/", MaxAttempts: 2}, Options{RetryBackoff: fastBackoff{}})
	res, err := src.Fetch(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "ssm /flags/prod/: GetParametersByPath") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Fetch with nothing listening = %+v, %v; want a connection error", res, err)
	}
	t.Logf("error: %v", err)
}
