package ssm

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/sources/ssm/ssmevent"
)

// MotoSQS is a plain SQS client for playing EventBridge against moto.
func MotoSQS(m *testsvc.Moto) *sqs.Client {
	return sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(m.URL), Credentials: staticCreds{}})
}

func CreateQueue(t testing.TB, q *sqs.Client, name string) string {
	t.Helper()
	out, err := q.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("create queue %s: %v", name, err)
	}
	return aws.ToString(out.QueueUrl)
}

func send(t testing.TB, q *sqs.Client, url, body string) {
	t.Helper()
	if _, err := q.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)}); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// waitUntil polls cond until it holds (a test's own deadline ends a hang).
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// queueEmpty tells whether the queue holds no message, visible or in flight (so
// every message was deleted).
func queueEmpty(t testing.TB, q *sqs.Client, url string) bool {
	t.Helper()
	out, err := q.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatalf("queue attributes: %v", err)
	}
	return out.Attributes["ApproximateNumberOfMessages"] == "0" && out.Attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
}

func (s *Source) isQueueLive() bool {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	return s.queueLive
}

// startWatch runs src.Watch until the test ends; signals receives its changed calls.
func startWatch(t testing.TB, src *Source) (signals chan struct{}) {
	t.Helper()
	signals = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- src.Watch(ctx, func() {
			select {
			case signals <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
	})
	return signals
}

// drain forgets signals already given (two receives may signal twice for names
// one fetch reads).
func drain(signals chan struct{}) {
	select {
	case <-signals:
	default:
	}
}

func waitSignal(t testing.TB, signals chan struct{}) {
	t.Helper()
	select {
	case <-signals:
	case <-time.After(60 * time.Second):
		t.Fatal("no change signal from Watch")
	}
}

// syncLog is a concurrency-safe log buffer.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestMotoChangeQueue: with changeQueueUrl, an event on the queue wakes Watch, the
// next fetch reads only the named parameters, fetches without events read nothing,
// and every message (strays included) is deleted.
func TestMotoChangeQueue(t *testing.T) {
	m := testsvc.StartMoto(t)
	c, q := motoClient(t, m), MotoSQS(m)
	url := CreateQueue(t, q, "flagsync-changes")
	put(t, c, "/flags/prod/a", "true", types.ParameterTypeString)
	put(t, c, "/flags/prod/b", "true", types.ParameterTypeString)
	put(t, c, "/flags/staging/x", "true", types.ParameterTypeString)
	put(t, c, "/flags/prod/nested/y", "true", types.ParameterTypeString)
	logs := &syncLog{}
	src := newTestSource(t, m.URL, Config{Path: "/flags/prod/", Recursive: aws.Bool(false), ChangeQueueURL: url},
		Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	ctx := context.Background()
	first, err := src.Fetch(ctx)
	if err != nil {
		t.Fatalf("full fetch: %v", err)
	}
	signals := startWatch(t, src)

	// Strays first: another path, a nested name this one-level source does not read,
	// a label move, a message that is no event and an event of another kind. Then
	// the change.
	put(t, c, "/flags/prod/a", "false", types.ParameterTypeString)
	for _, body := range []string{
		ssmevent.Body("/flags/staging/x", "Update"),
		ssmevent.Body("/flags/prod/nested/y", "Update"),
		ssmevent.Body("/flags/prod/b", "LabelParameterVersion"),
		"hello",
		strings.Replace(ssmevent.Body("/flags/prod/b", "Update"), "Parameter Store Change", "Parameter Store Policy Action", 1),
		ssmevent.Body("/flags/prod/a", "Update"),
	} {
		send(t, q, url, body)
	}
	waitSignal(t, signals)
	waitUntil(t, "every message is deleted", func() bool { return queueEmpty(t, q, url) })
	res, err := src.Fetch(ctx)
	if err != nil {
		t.Fatalf("named fetch: %v", err)
	}
	st := src.LastStats()
	if !st.Named || st.Full || len(st.Calls) != 1 || st.Calls[OpGetParameters] != 1 || st.Changed != 1 || st.Parameters != 2 {
		t.Fatalf("stats = %+v, want a named fetch: 1 GetParameters, 1 changed, 2 parameters", st)
	}
	if res.Overlays["a"].Value != false || res.Overlays["b"].Value != true || res == first {
		t.Fatalf("after the event: %+v", res.Overlays)
	}
	if got := logs.String(); strings.Count(got, "not a Parameter Store change event") != 2 || strings.Contains(got, "hello") {
		t.Fatalf("stray messages were not both reported (without their content):\n%s", got)
	}

	// No event: the fetch reads nothing and returns the same result.
	again, err := src.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := src.LastStats(); len(st.Calls) != 0 || st.Named || st.Full || again != res {
		t.Fatalf("fetch without events: stats %+v, same result %v; want no call", st, again == res)
	}

	// Deleted and created again (version 1 again): two events, one read.
	drain(signals)
	if _, err := c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/flags/prod/b")}); err != nil {
		t.Fatal(err)
	}
	send(t, q, url, ssmevent.Body("/flags/prod/b", "Delete"))
	put(t, c, "/flags/prod/b", "false", types.ParameterTypeString)
	send(t, q, url, ssmevent.Body("/flags/prod/b", "Create"))
	waitSignal(t, signals)
	waitUntil(t, "every message is deleted", func() bool { return queueEmpty(t, q, url) })
	res, err = src.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := src.LastStats(); !st.Named || st.Calls[OpGetParameters] != 1 || st.Changed != 1 {
		t.Fatalf("re-create stats = %+v", st)
	}
	if ov := res.Overlays["b"]; ov.Value != false || ov.Origin.String() != "ssm:/flags/prod/b@1" {
		t.Fatalf("re-created b = %+v", ov)
	}

	// Deleted: the name is unknown to GetParameters and leaves the view.
	if _, err := c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/flags/prod/a")}); err != nil {
		t.Fatal(err)
	}
	drain(signals)
	send(t, q, url, ssmevent.Body("/flags/prod/a", "Delete"))
	waitSignal(t, signals)
	waitUntil(t, "every message is deleted", func() bool { return queueEmpty(t, q, url) })
	res, err = src.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Overlays["a"]; ok || src.LastStats().Deleted != 1 {
		t.Fatalf("deleted a: overlays %+v, stats %+v", res.Overlays, src.LastStats())
	}
}

// TestMotoChangeQueueFailureFallsBackToListing: while the queue cannot be read (here
// it does not exist yet) every fetch lists the path as without a queue, the failure
// is logged with its AWS error code, and once the queue works the source is back
// on events.
func TestMotoChangeQueueFailureFallsBackToListing(t *testing.T) {
	m := testsvc.StartMoto(t)
	c, q := motoClient(t, m), MotoSQS(m)
	put(t, c, "/flags/prod/a", "true", types.ParameterTypeString)
	url := m.URL + "/123456789012/flagsync-later"
	logs := &syncLog{}
	src := newTestSource(t, m.URL, Config{Path: "/flags/prod/", ChangeQueueURL: url},
		Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	ctx := context.Background()
	if _, err := src.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	signals := startWatch(t, src)
	waitUntil(t, "the queue failure is logged", func() bool { return strings.Contains(logs.String(), "ssm change queue failed") })
	if !strings.Contains(logs.String(), "QueueDoesNotExist") && !strings.Contains(logs.String(), "NonExistentQueue") {
		t.Fatalf("the log does not name the AWS error:\n%s", logs)
	}
	if src.isQueueLive() {
		t.Fatal("queue still taken as live after it failed")
	}
	put(t, c, "/flags/prod/a", "false", types.ParameterTypeString)
	res, err := src.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := src.LastStats(); st.Named || st.Calls[OpDescribeParameters] == 0 || res.Overlays["a"].Value != false {
		t.Fatalf("fetch with the queue down: stats %+v, a=%+v; want a listing that sees the change", st, res.Overlays["a"])
	}

	CreateQueue(t, q, "flagsync-later")
	waitUntil(t, "the queue is read again", src.isQueueLive)
	put(t, c, "/flags/prod/a", "true", types.ParameterTypeString)
	send(t, q, url, ssmevent.Body("/flags/prod/a", "Update"))
	waitSignal(t, signals)
	res, err = src.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := src.LastStats(); !st.Named || res.Overlays["a"].Value != true {
		t.Fatalf("after recovery: stats %+v, a=%+v; want a named fetch", st, res.Overlays["a"])
	}
	if !strings.Contains(logs.String(), "ssm change queue recovered") {
		t.Fatalf("recovery not logged:\n%s", logs)
	}
}

// TestNamedFetchFailureKeepsTheNames: names from events survive a failed fetch and
// are read by the next one.
func TestNamedFetchFailureKeepsTheNames(t *testing.T) {
	f := newFakeSSM(t)
	seedFake(f, 3)
	src := newTestSource(t, f.srv.URL, Config{Path: "/flags/prod/", MaxAttempts: 1}, Options{})
	ctx := context.Background()
	if _, err := src.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	src.setQueueLive(true) // as Watch does while ReceiveMessage works
	f.put("/flags/prod/f0001", "false")
	src.addPending([]string{"/flags/prod/f0001"})
	f.fail = func(string, int) (int, string, bool) {
		return 500, `{"__type":"InternalServerError","message":"boom"}`, true
	}
	if _, err := src.Fetch(ctx); err == nil {
		t.Fatal("fetch succeeded against a failing store")
	}
	f.fail = nil
	res, err := src.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := src.LastStats(); !st.Named || res.Overlays["f0001"].Value != false {
		t.Fatalf("after the failure: stats %+v, f0001=%+v; want the name read", st, res.Overlays["f0001"])
	}
}
