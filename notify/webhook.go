package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook headers. The signature is HMAC-SHA256 with the webhook's secret over
// "<timestamp>.<body>", so a captured request cannot be replayed with a new timestamp;
// receivers reject timestamps too far from their clock (see Verify).
const (
	HeaderSignature = "X-Flagsync-Signature" // "sha256=<hex>"
	HeaderTimestamp = "X-Flagsync-Timestamp" // unix seconds of this attempt
	HeaderEvent     = "X-Flagsync-Event"     // event type: publish, guard, cleanup
	HeaderDelivery  = "X-Flagsync-Delivery"  // unique per event and webhook, same on retries
)

// Sign returns the X-Flagsync-Signature value for body sent at timestamp.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a received webhook: the signature must match and the timestamp must be
// within tolerance of now. Receivers written in Go can use it as is.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("bad %s %q", HeaderTimestamp, timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%s %s is %s away from now: possible replay", HeaderTimestamp, timestamp, d)
	}
	if !hmac.Equal([]byte(Sign(secret, timestamp, body)), []byte(signature)) {
		return errors.New("signature mismatch")
	}
	return nil
}

type webhook struct {
	cfg     WebhookConfig
	client  *http.Client
	metrics *Metrics
	log     *slog.Logger
}

// permanentError is a delivery failure that retrying cannot fix (a 4xx answer).
type permanentError struct{ error }

func (w *webhook) deliver(ctx context.Context, ev Event) error {
	var (
		body []byte
		err  error
	)
	if w.cfg.Format == "slack" {
		body, err = json.Marshal(slackPayload(ev))
	} else {
		body, err = json.Marshal(ev)
	}
	if err != nil {
		return fmt.Errorf("webhook %s: encode %s event: %w", w.cfg.Name, ev.Type, err)
	}
	attempts := w.cfg.MaxAttempts
	if attempts == 0 {
		attempts = 5
	}
	minB, maxB := durOr(w.cfg.BackoffMin, time.Second), durOr(w.cfg.BackoffMax, time.Minute)
	id := newDeliveryID()
	for attempt := 1; ; attempt++ {
		retryAfter, err := w.attempt(ctx, ev, id, body)
		if err == nil {
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) || attempt >= attempts || ctx.Err() != nil {
			return fmt.Errorf("webhook %s: attempt %d/%d: %w", w.cfg.Name, attempt, attempts, err)
		}
		w.metrics.retries.WithLabelValues(w.cfg.Name).Inc()
		wait := backoff(attempt, minB, maxB)
		if retryAfter > wait {
			wait = min(retryAfter, maxB)
		}
		w.log.Info("webhook attempt failed, retrying", "sink", w.cfg.Name, "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("webhook %s: gave up after attempt %d: %w", w.cfg.Name, attempt, ctx.Err())
		case <-t.C:
		}
	}
}

// backoff is exponential with full jitter: uniform in [min, min·2^(attempt-1)] capped at max.
func backoff(attempt int, minB, maxB time.Duration) time.Duration {
	ceil := minB
	for i := 1; i < attempt && ceil < maxB; i++ {
		ceil *= 2
	}
	ceil = min(ceil, maxB)
	if ceil <= minB {
		return minB
	}
	return minB + rand.N(ceil-minB+1)
}

func (w *webhook) attempt(ctx context.Context, ev Event, id string, body []byte) (retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, durOr(w.cfg.Timeout, 10*time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, permanentError{err}
	}
	for k, v := range w.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "flagsync-notify")
	req.Header.Set(HeaderEvent, string(ev.Type))
	req.Header.Set(HeaderDelivery, id)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set(HeaderTimestamp, ts)
	if w.cfg.Secret != "" {
		req.Header.Set(HeaderSignature, Sign([]byte(w.cfg.Secret), ts, body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// The URL may carry a token (Slack hooks do): report the host only.
		return 0, fmt.Errorf("post to %s: %w", req.URL.Host, unwrapURLError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return 0, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			retryAfter = time.Duration(s) * time.Second
		}
		return retryAfter, fmt.Errorf("%s answered %s", req.URL.Host, resp.Status)
	default:
		return 0, permanentError{fmt.Errorf("%s answered %s (not retried)", req.URL.Host, resp.Status)}
	}
}

// unwrapURLError drops the *url.Error wrapper, whose message repeats the full URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// slackMessage is the subset of Slack's incoming-webhook payload flagsync sends; it is
// also accepted by Mattermost and Rocket.Chat.
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type string     `json:"type"`
	Text *slackText `json:"text,omitempty"`
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

const slackMaxLines = 20

func slackPayload(ev Event) slackMessage {
	set := ev.FlagSetID
	if ev.Environment != "" {
		set += " (" + ev.Environment + ")"
	}
	var head string
	switch ev.Type {
	case TypePublish:
		head = fmt.Sprintf("flagsync %s: published %d flag change(s)", set, len(ev.Changes))
		if ev.Revision != "" {
			head += ", revision " + short(ev.Revision)
		}
	case TypeGuard:
		head = fmt.Sprintf("flagsync %s: guard stopped a publish: %s", set, ev.Message)
	case TypeCleanup:
		head = fmt.Sprintf("flagsync %s: cleanup acted on %d expired flag(s)", set, len(ev.Changes))
	case TypeExpiry:
		head = fmt.Sprintf("flagsync %s: %d flag(s) expired or expiring", set, len(ev.Changes))
	default:
		head = fmt.Sprintf("flagsync %s: %s", set, ev.Type)
	}
	var lines []string
	for i, c := range ev.Changes {
		if i == slackMaxLines {
			lines = append(lines, fmt.Sprintf("… and %d more", len(ev.Changes)-i))
			break
		}
		lines = append(lines, "• "+slackLine(c))
	}
	msg := slackMessage{Text: slackEscape(head), Blocks: []slackBlock{{Type: "section", Text: &slackText{Type: "mrkdwn", Text: "*" + slackEscape(head) + "*"}}}}
	if len(lines) > 0 {
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: strings.Join(lines, "\n")}})
	}
	return msg
}

func slackLine(c Change) string {
	s := "`" + slackEscape(c.Flag) + "` " + string(c.Kind)
	switch c.Kind {
	case KindAdded:
		s += ": " + describe(c.New)
	case KindRemoved:
		s += " (was " + describe(c.Old) + ")"
	case KindChanged:
		s += ": " + describe(c.Old) + " → " + describe(c.New)
	case KindCleanup:
		s += ": " + string(c.Action)
		if c.Detail != "" {
			s += " (" + slackEscape(c.Detail) + ")"
		}
	case KindExpiry:
		s += ": " + slackEscape(c.Detail)
		if c.Action != "" {
			s += " (cleanup action " + string(c.Action) + ")"
		}
	}
	if c.Owner != "" {
		s += ", owner " + slackEscape(c.Owner)
	}
	return s
}

func describe(s *State) string {
	if s == nil {
		return "-"
	}
	out := string(s.State)
	if s.DefaultVariant != nil {
		v, _ := json.Marshal(s.DefaultValue)
		out += ", default " + slackEscape(*s.DefaultVariant) + "=" + slackEscape(string(v))
	}
	return out
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
