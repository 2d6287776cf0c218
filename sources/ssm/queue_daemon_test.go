package ssm_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/flagsync/flagsync/daemon"
	"github.com/flagsync/flagsync/internal/testsvc"
	ssmsource "github.com/flagsync/flagsync/sources/ssm"
	"github.com/flagsync/flagsync/sources/ssm/ssmevent"
)

// queueDaemon is a running daemon with one SSM source reading /flags/prod/ from moto
// with a change queue, publishing to a file, on an hourly schedule (so only the
// queue can make it sync in a test).
type queueDaemon struct {
	ssm      *ssm.Client
	sqs      *sqs.Client
	queueURL string
	out      string
}

func startQueueDaemon(tb testing.TB) *queueDaemon {
	tb.Helper()
	m := testsvc.StartMoto(tb)
	testsvc.IsolateAWS(tb, "")
	qd := &queueDaemon{
		ssm: ssm.New(ssm.Options{Region: "us-east-1", BaseEndpoint: aws.String(m.URL),
			Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")}),
		sqs: ssmsource.MotoSQS(m),
		out: filepath.Join(tb.TempDir(), "flags.json"),
	}
	qd.queueURL = ssmsource.CreateQueue(tb, qd.sqs, "flagsync-changes")
	qd.put(tb, "/flags/prod/watched", "start")
	yml := fmt.Sprintf(`flagSetId: ssm-queue
schedule: "@every 1h"
sources:
  - name: prod-ssm
    type: ssm
    path: /flags/prod/
    region: us-east-1
    endpoint: %s
    changeQueueUrl: %s
outputs:
  file:
    path: %s
`, m.URL, qd.queueURL, qd.out)
	cfg, err := daemon.ParseConfig([]byte(yml), func(string) (string, bool) { return "", false })
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	d, err := daemon.New(cfg, daemon.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatalf("daemon: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
		d.Close()
	})
	qd.waitFile(tb, `"start"`)
	return qd
}

func (qd *queueDaemon) put(tb testing.TB, name, value string) {
	tb.Helper()
	_, err := qd.ssm.PutParameter(context.Background(), &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(value), Type: types.ParameterTypeString, Overwrite: aws.Bool(true)})
	if err != nil {
		tb.Fatalf("put %s: %v", name, err)
	}
}

// change writes a parameter and plays EventBridge: the Parameter Store Change event
// goes onto the queue.
func (qd *queueDaemon) change(tb testing.TB, name, value string) {
	tb.Helper()
	qd.put(tb, name, value)
	_, err := qd.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl: aws.String(qd.queueURL), MessageBody: aws.String(ssmevent.Body(name, "Update"))})
	if err != nil {
		tb.Fatalf("send: %v", err)
	}
}

// waitFile polls the published file until it contains want (1ms apart, so the
// bench's resolution is ~1ms); a minute without it fails.
func (qd *queueDaemon) waitFile(tb testing.TB, want string) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if b, err := os.ReadFile(qd.out); err == nil && bytes.Contains(b, []byte(want)) {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(qd.out)
			tb.Fatalf("the file never showed %s:\n%s", want, b)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDaemonSyncsOnChangeQueueEvent: the daemon, on an hourly schedule, publishes a
// Parameter Store change as soon as its event is on the queue.
func TestDaemonSyncsOnChangeQueueEvent(t *testing.T) {
	qd := startQueueDaemon(t)
	qd.change(t, "/flags/prod/watched", "changed")
	qd.waitFile(t, `"changed"`)
	qd.change(t, "/flags/prod/new_one", "hello")
	qd.waitFile(t, `"hello"`)
}

// BenchmarkChangeQueueToFile measures SSM change → published file through the real
// daemon pipeline with the change queue (moto SSM + SQS): from PutParameter to the
// new value in the file, the event put on the queue right after the write as
// EventBridge would. Reports p50 and p99 (goal p99 ≤ 1s); run with -benchtime=200x.
// Real EventBridge adds its own delivery delay (typically well under a second).
func BenchmarkChangeQueueToFile(b *testing.B) {
	qd := startQueueDaemon(b)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		value := fmt.Sprintf("v%d", i)
		start := time.Now()
		qd.change(b, "/flags/prod/watched", value)
		qd.waitFile(b, `"`+value+`"`)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	testsvc.ReportLatencies(b, "", lat)
}
