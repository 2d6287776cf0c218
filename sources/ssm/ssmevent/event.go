// Package ssmevent reads the Parameter Store Change events EventBridge emits for
// Parameter Store writes, as an SQS queue delivers them (directly or through SNS).
// It holds no AWS client, so its parser can be fuzzed on its own.
package ssmevent

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The EventBridge event a Parameter Store write emits ("Parameter Store Change"),
// as an EventBridge rule with an SQS target delivers it: the message body is the
// event itself.
const (
	eventSource     = "aws.ssm"
	eventDetailType = "Parameter Store Change"
)

// opLabelParameterVersion is the detail.operation of a label move; the others are
// Create, Update and Delete.
const opLabelParameterVersion = "LabelParameterVersion"

// MaxNameLength is the longest parameter name Parameter Store accepts (the full
// ARN form is 1011 characters; a name with its path at most 2048).
const MaxNameLength = 2048

// Event is what the source needs of one Parameter Store Change event.
type Event struct {
	// Name is the parameter's full name, e.g. /flags/prod/checkout.
	Name string
	// Operation is Create, Update, Delete or LabelParameterVersion (others may come).
	Operation string
}

// ChangesValue tells whether the event may change what reading the parameter
// returns. Moving a label does not (the source reads the latest version); any
// operation not known to be harmless counts as a change.
func (e Event) ChangesValue() bool { return e.Operation != opLabelParameterVersion }

// Parse reads an SQS message body holding an EventBridge Parameter Store
// Change event, as the rule delivers it or wrapped in an SNS notification. The errors say why a message is not one (without quoting it: a
// stray message may hold anything).
func Parse(body []byte) (Event, error) {
	// Through an SNS topic (one queue per replica) without raw message delivery, the
	// event is the string Message of an SNS notification.
	var sns struct {
		Type    string  `json:"Type"`
		Message *string `json:"Message"`
	}
	if json.Unmarshal(body, &sns) == nil && sns.Type == "Notification" && sns.Message != nil {
		body = []byte(*sns.Message)
	}
	var ev struct {
		Source     string `json:"source"`
		DetailType string `json:"detail-type"`
		Detail     *struct {
			Name      string `json:"name"`
			Operation string `json:"operation"`
		} `json:"detail"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return Event{}, errors.New("not a JSON object")
	}
	if ev.Source != eventSource || ev.DetailType != eventDetailType {
		return Event{}, fmt.Errorf("source %.40q, detail-type %.40q: not a %s event from %s",
			ev.Source, ev.DetailType, eventDetailType, eventSource)
	}
	if ev.Detail == nil {
		return Event{}, errors.New("detail: missing")
	}
	if err := ValidName(ev.Detail.Name); err != nil {
		return Event{}, fmt.Errorf("detail.name: %w", err)
	}
	if ev.Detail.Operation == "" {
		return Event{}, errors.New("detail.operation: missing")
	}
	return Event{Name: ev.Detail.Name, Operation: ev.Detail.Operation}, nil
}

// ValidName checks the characters and length Parameter Store allows in a
// name, so a forged message cannot make GetParameters fail for the names batched
// with it.
func ValidName(name string) error {
	if name == "" {
		return errors.New("missing")
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("longer than %d characters", MaxNameLength)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.-/", r)) {
			return fmt.Errorf("character %q is not allowed in a parameter name", r)
		}
	}
	return nil
}

// Body is a Parameter Store Change event for name exactly as an EventBridge rule with
// an SQS target delivers it (the message body is the event), for tests and tools.
func Body(name, operation string) string {
	b, _ := json.Marshal(map[string]any{
		"version":     "0",
		"id":          fmt.Sprintf("%x", time.Now().UnixNano()),
		"detail-type": eventDetailType,
		"source":      eventSource,
		"account":     "123456789012",
		"time":        time.Now().UTC().Format(time.RFC3339),
		"region":      "us-east-1",
		"resources":   []string{"arn:aws:ssm:us-east-1:123456789012:parameter" + name},
		"detail":      map[string]string{"name": name, "type": "String", "operation": operation},
	})
	return string(b)
}
