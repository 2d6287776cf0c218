package ssm

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/flagsync/flagsync/sources"
	"github.com/flagsync/flagsync/sources/ssm/ssmevent"
)

// Operation names of the change queue calls (Options.OnAPICall).
const (
	OpReceiveMessage     = "ReceiveMessage"
	OpDeleteMessageBatch = "DeleteMessageBatch"
)

const (
	// queueWaitSeconds is the long poll of one ReceiveMessage: the most SQS allows,
	// so an idle queue costs 3 calls a minute and a message is returned the moment
	// it arrives.
	queueWaitSeconds = 20
	// queueCallTimeout bounds one ReceiveMessage: the long poll plus time to answer,
	// so a connection that silently died is noticed.
	queueCallTimeout = (queueWaitSeconds + 10) * time.Second
	// queueBatch is the most messages one ReceiveMessage (and one
	// DeleteMessageBatch) takes.
	queueBatch = 10
	// maxQueueBackoff caps the wait between attempts while the queue fails.
	maxQueueBackoff = 30 * time.Second
)

// changeQueue is the SQS queue an EventBridge rule feeds with the Parameter Store
// Change events of the source's path.
type changeQueue struct {
	client *sqs.Client
	url    string
}

var _ sources.Watcher = (*Source)(nil)

// Watch long-polls the change queue (changeQueueUrl) and calls changed when a
// message names a parameter under the path; the next Fetch then reads just the
// named parameters. Messages are deleted once their names are recorded for that
// fetch (a daemon that stops before fetching starts over with a full sync, so
// nothing is lost). Messages that are not Parameter Store Change events are
// logged and deleted. While ReceiveMessage fails, fetches fall back to listing the
// path as without a queue, and Watch retries with backoff. Without a queue Watch
// only waits for ctx.
func (s *Source) Watch(ctx context.Context, changed func()) error {
	if s.queue == nil {
		<-ctx.Done()
		return ctx.Err()
	}
	defer s.setQueueLive(false)
	s.setQueueLive(true)
	failures := 0
	for {
		msgs, err := s.receive(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			failures++
			s.setQueueLive(false)
			if failures == 1 {
				s.log.Warn("ssm change queue failed; listing Parameter Store at every sync until it recovers",
					"source", s.name, "queue", s.queue.url, "error", err)
			}
			if !sources.Sleep(ctx, queueBackoff(failures)) {
				return ctx.Err()
			}
			continue
		}
		if failures > 0 {
			s.log.Info("ssm change queue recovered", "source", s.name, "queue", s.queue.url, "failures", failures)
			failures = 0
			s.setQueueLive(true)
		}
		if names := s.handleMessages(ctx, msgs); len(names) > 0 {
			s.addPending(names)
			changed()
		}
		s.deleteMessages(ctx, msgs)
	}
}

// receive long-polls for up to queueBatch messages.
func (s *Source) receive(ctx context.Context) ([]types.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, queueCallTimeout)
	defer cancel()
	s.count(OpReceiveMessage)
	out, err := callAPI(ctx, s, OpReceiveMessage, func(ctx context.Context) (*sqs.ReceiveMessageOutput, error) {
		return s.queue.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(s.queue.url),
			MaxNumberOfMessages: queueBatch,
			WaitTimeSeconds:     queueWaitSeconds,
		})
	})
	if err != nil {
		return nil, err
	}
	return out.Messages, nil
}

// handleMessages returns the parameter names under the path whose value the
// messages say may have changed.
func (s *Source) handleMessages(ctx context.Context, msgs []types.Message) []string {
	var names []string
	for _, m := range msgs {
		ev, err := ssmevent.Parse([]byte(aws.ToString(m.Body)))
		if err != nil {
			s.log.Warn("ssm change queue: deleting a message that is not a Parameter Store change event",
				"source", s.name, "queue", s.queue.url, "messageId", aws.ToString(m.MessageId), "error", err)
			continue
		}
		if ev.ChangesValue() && s.owns(ev.Name) {
			names = append(names, ev.Name)
		}
		s.log.Log(ctx, slog.LevelDebug, "ssm change event", "source", s.name, "parameter", ev.Name,
			"operation", ev.Operation)
	}
	return names
}

// deleteMessages removes handled messages from the queue. A failure only means they
// come back after the visibility timeout and their parameters are read once more.
func (s *Source) deleteMessages(ctx context.Context, msgs []types.Message) {
	if len(msgs) == 0 {
		return
	}
	entries := make([]types.DeleteMessageBatchRequestEntry, len(msgs))
	for i, m := range msgs {
		entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
	}
	s.count(OpDeleteMessageBatch)
	out, err := callAPI(ctx, s, OpDeleteMessageBatch, func(ctx context.Context) (*sqs.DeleteMessageBatchOutput, error) {
		return s.queue.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(s.queue.url), Entries: entries})
	})
	switch {
	case err != nil && ctx.Err() != nil:
		// Shutting down: the messages simply come back after the visibility timeout.
	case err != nil:
		s.log.Warn("ssm change queue: deleting handled messages failed; they will be read again",
			"source", s.name, "queue", s.queue.url, "error", err)
	default:
		for _, f := range out.Failed {
			s.log.Warn("ssm change queue: a handled message was not deleted; it will be read again",
				"source", s.name, "queue", s.queue.url, "code", aws.ToString(f.Code), "message", aws.ToString(f.Message))
		}
	}
}

// queueBackoff is 1s, 2s, 4s … up to maxQueueBackoff.
func queueBackoff(failures int) time.Duration {
	return min(time.Second<<min(failures-1, 10), maxQueueBackoff)
}
