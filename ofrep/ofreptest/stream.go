package ofreptest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Event is one server-sent event as a client sees it.
type Event struct {
	ID   string
	Data RefetchData
	At   time.Time // when the client read its last line
}

// RefetchData is the data of an OFREP refetchEvaluation event.
type RefetchData struct {
	Type         string `json:"type"`
	ETag         string `json:"etag"`
	LastModified int64  `json:"lastModified"`
}

// Stream is a minimal server-sent events reader (one line protocol, as in the
// WHATWG spec): it delivers events and counts comment lines (heartbeats).
type Stream struct {
	Status int
	Header http.Header
	Events chan Event
	// Comments receives every comment line (": heartbeat").
	Comments chan string
	cancel   context.CancelFunc
	done     chan struct{}
}

// OpenStream connects to url with GET and the given headers. The stream is closed
// at the end of the test; a non-200 answer is returned with Events closed.
func OpenStream(t testing.TB, client *http.Client, url string, hdr map[string]string) *Stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	s := &Stream{Status: resp.StatusCode, Header: resp.Header, Events: make(chan Event, 64),
		Comments: make(chan string, 64), cancel: cancel, done: make(chan struct{})}
	t.Cleanup(s.Close)
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		defer close(s.Events)
		if resp.StatusCode != http.StatusOK {
			return
		}
		s.read(bufio.NewScanner(resp.Body))
	}()
	return s
}

func (s *Stream) read(sc *bufio.Scanner) {
	var ev Event
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() > 0 {
				ev.At = time.Now()
				if json.Unmarshal([]byte(data.String()), &ev.Data) != nil {
					ev.Data = RefetchData{Type: "unparsable: " + data.String()}
				}
				s.Events <- ev
			}
			ev, data = Event{}, strings.Builder{}
		case strings.HasPrefix(line, ":"):
			select {
			case s.Comments <- line:
			default:
			}
		case strings.HasPrefix(line, "id:"):
			ev.ID = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
}

// Next waits up to timeout for the next event.
func (s *Stream) Next(timeout time.Duration) (Event, error) {
	select {
	case ev, ok := <-s.Events:
		if !ok {
			return Event{}, fmt.Errorf("stream ended")
		}
		return ev, nil
	case <-time.After(timeout):
		return Event{}, fmt.Errorf("no event within %v", timeout)
	}
}

// Ended tells whether the server ended the stream within timeout.
func (s *Stream) Ended(timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-s.Events:
			if !ok {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// Close disconnects.
func (s *Stream) Close() {
	s.cancel()
	<-s.done
}
