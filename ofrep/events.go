package ofrep

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EventStreamPath is where Events serves its server-sent event stream. OFREP treats the
// URL as opaque (the bulk response advertises it), so the path is ours to choose.
const EventStreamPath = "/ofrep/v1/events"

// Defaults of EventsOptions.
const (
	DefaultMaxStreams      = 256
	DefaultHeartbeat       = 15 * time.Second
	DefaultEventWriteLimit = 10 * time.Second
	DefaultTicketWindow    = 24 * time.Hour
	DefaultRefetchWait     = 3 * time.Second
)

// EventsOptions bounds an event stream hub; zero values pick the defaults.
type EventsOptions struct {
	// MaxStreams caps the streams open at once; one more is answered 503 with
	// Retry-After, so streams can never take every connection the server has.
	MaxStreams int
	// Heartbeat is how often an idle stream gets a comment line, so proxies and load
	// balancers do not close it and a dead client is noticed.
	Heartbeat time.Duration
	// WriteLimit bounds writing one event to one client: a client that reads slower
	// than that is disconnected (it reconnects and refetches), never waited for.
	WriteLimit time.Duration
	// TicketWindow is how long a stream ticket stays the same; a ticket is accepted
	// for one to two windows after it was issued.
	TicketWindow time.Duration
	// RefetchWait is how long a bulk evaluation that names a revision this server
	// does not serve yet (flagConfigEtag, sent by providers refetching after an
	// event) waits for it. Behind a load balancer the event may come from a replica
	// that published first; the refetch then waits for this one to catch up instead
	// of answering the old flags, which the client would keep until the next change.
	RefetchWait time.Duration
	Logger      *slog.Logger
	// Now is the clock of tickets and lastModified (tests); nil is time.Now.
	Now func() time.Time
}

// Events is OFREP's change notification (ADR-0008, "eventStreams"): clients that
// hold a bulk evaluation open a server-sent event stream and get a
// refetchEvaluation event each time the flag configuration changes, instead of
// polling. Announce is called with the configuration's revision on every publish;
// only a revision different from the last one is sent.
//
// A slow or stalled client never delays Announce: each stream holds at most one
// pending notification (a newer one replaces it: a refetch fetches the latest
// anyway), and a write that takes longer than WriteLimit ends that stream.
//
// Browsers' EventSource cannot send headers, so the advertised URL carries a
// ticket: a MAC of its expiry under a key that never leaves the process. A ticket
// opens the event stream only, never an evaluation, and the stream says nothing but
// "the configuration changed, to this revision".
type Events struct {
	opts EventsOptions
	key  []byte
	log  *slog.Logger

	mu       sync.Mutex
	streams  map[*stream]struct{}
	revision string        // the last revision announced ("" none yet)
	at       time.Time     // when it was announced
	changed  chan struct{} // closed (and replaced) by the next Announce
	closed   bool
	done     chan struct{}
}

// stream is one connected client; pending holds its next notification.
type stream struct{ pending chan notice }

type notice struct {
	revision string
	at       time.Time
}

// NewEvents returns an event stream hub; Close ends its streams (server shutdown).
func NewEvents(opts EventsOptions) *Events {
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = DefaultMaxStreams
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.WriteLimit <= 0 {
		opts.WriteLimit = DefaultEventWriteLimit
	}
	if opts.TicketWindow <= 0 {
		opts.TicketWindow = DefaultTicketWindow
	}
	if opts.RefetchWait <= 0 {
		opts.RefetchWait = DefaultRefetchWait
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Events{opts: opts, log: opts.Logger, key: make([]byte, 32), streams: map[*stream]struct{}{}, done: make(chan struct{}), changed: make(chan struct{})}
	if e.log == nil {
		e.log = slog.Default()
	}
	if _, err := rand.Read(e.key); err != nil {
		// crypto/rand does not fail on supported platforms; refuse tickets rather
		// than sign with a known key.
		e.key = nil
	}
	return e
}

// Announce tells every open stream that the configuration is now at revision, unless
// that was already the last revision announced (a publish that changed nothing, a
// reload serving the same flags). It reports whether it announced. It never blocks
// on a client.
func (e *Events) Announce(revision string) bool {
	if revision == "" {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || revision == e.revision {
		return false
	}
	e.revision, e.at = revision, e.opts.Now()
	close(e.changed)
	e.changed = make(chan struct{})
	n := notice{revision: revision, at: e.at}
	for s := range e.streams {
		// Only Announce sends, under mu, so after the drain the send cannot block.
		select {
		case <-s.pending:
		default:
		}
		s.pending <- n
	}
	return true
}

// SetMaxStreams changes MaxStreams (0: the default) for streams opened from now on;
// open streams stay.
func (e *Events) SetMaxStreams(n int) {
	if n <= 0 {
		n = DefaultMaxStreams
	}
	e.mu.Lock()
	e.opts.MaxStreams = n
	e.mu.Unlock()
}

// awaitRevision waits until current() serves revision want, for at most
// RefetchWait (or until ctx ends): it wakes on each Announce to look again.
func (e *Events) awaitRevision(ctx context.Context, want string, current func() string) {
	timer := time.NewTimer(e.opts.RefetchWait)
	defer timer.Stop()
	for {
		e.mu.Lock()
		next := e.changed
		e.mu.Unlock()
		if current() == want {
			return
		}
		select {
		case <-next:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		case <-e.done:
			return
		}
	}
}

// Streams is the number of open streams.
func (e *Events) Streams() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.streams)
}

// Close ends every stream and refuses new ones; call it when the server shuts down
// (http.Server.RegisterOnShutdown), since Shutdown waits for handlers that a stream
// would hold forever.
func (e *Events) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.closed = true
		close(e.done)
	}
}

// errStreamLimit and errClosed are why a stream was not opened.
var (
	errStreamLimit = errors.New("event stream limit reached")
	errClosed      = errors.New("server shutting down")
)

func (e *Events) open() (*stream, notice, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.closed:
		return nil, notice{}, errClosed
	case len(e.streams) >= e.opts.MaxStreams:
		return nil, notice{}, errStreamLimit
	}
	s := &stream{pending: make(chan notice, 1)}
	e.streams[s] = struct{}{}
	return s, notice{revision: e.revision, at: e.at}, nil
}

func (e *Events) maxStreams() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.opts.MaxStreams
}

func (e *Events) close(s *stream) {
	e.mu.Lock()
	delete(e.streams, s)
	e.mu.Unlock()
}

// ServeHTTP serves one event stream (GET EventStreamPath). Credentials are the
// caller's business (Handler checks them, or a ticket); this only streams.
//
// On connect the client gets the current revision as a refetchEvaluation event,
// unless its Last-Event-ID already names it: a change published between the
// client's bulk evaluation and its connect is never missed, and a reconnect after
// a missed change refetches.
func (e *Events) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s, cur, err := e.open()
	if err != nil {
		w.Header().Set("Retry-After", "30")
		detail := err.Error()
		if errors.Is(err, errStreamLimit) {
			limit := strconv.Itoa(e.maxStreams())
			detail += " (" + limit + " open); poll the bulk evaluation instead"
			e.log.Warn("ofrep: event stream refused: limit reached", "max", limit)
		}
		writeJSON(w, http.StatusServiceUnavailable, generalError{ErrorDetails: detail})
		return
	}
	defer e.close(s)
	rc := http.NewResponseController(w)
	// The server's read and write timeouts bound requests; a stream is bounded per
	// event instead (WriteLimit) and by the heartbeat noticing a dead peer.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	// retry: how long EventSource waits before reconnecting after a drop.
	if !e.write(w, rc, "retry: 2000\n\n") {
		return
	}
	if cur.revision != "" && r.Header.Get("Last-Event-ID") != cur.revision {
		if !e.write(w, rc, eventText(cur)) {
			return
		}
	}
	tick := time.NewTicker(e.opts.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case n := <-s.pending:
			if !e.write(w, rc, eventText(n)) {
				return
			}
		case <-tick.C:
			if !e.write(w, rc, ": heartbeat\n\n") {
				return
			}
		case <-r.Context().Done():
			return
		case <-e.done:
			return
		}
	}
}

// write sends text and flushes it within WriteLimit; false ends the stream.
func (e *Events) write(w io.Writer, rc *http.ResponseController, text string) bool {
	_ = rc.SetWriteDeadline(time.Now().Add(e.opts.WriteLimit)) // the real clock: a deadline for the socket
	if _, err := io.WriteString(w, text); err != nil {
		return false
	}
	return rc.Flush() == nil
}

// refetchEvent is the data of an ADR-0008 refetchEvaluation event.
type refetchEvent struct {
	Type         string `json:"type"`
	ETag         string `json:"etag"`
	LastModified int64  `json:"lastModified"`
}

// eventText is one SSE event: its id is the revision (EventSource sends it back as
// Last-Event-ID when it reconnects).
func eventText(n notice) string {
	data, _ := json.Marshal(refetchEvent{Type: "refetchEvaluation", ETag: `"` + n.revision + `"`, LastModified: n.at.Unix()})
	return "id: " + n.revision + "\ndata: " + string(data) + "\n\n"
}

// Ticket returns a stream ticket valid for one to two TicketWindows from now. It is
// the same for a whole window, so the advertised URL (and the bulk ETag) changes only
// once per window.
func (e *Events) Ticket() string {
	if e.key == nil {
		return ""
	}
	w := e.opts.TicketWindow
	exp := e.opts.Now().Truncate(w).Add(2 * w).Unix()
	return strconv.FormatInt(exp, 10) + "." + e.mac(exp)
}

// TicketValid tells whether ticket was issued by this hub and has not expired.
func (e *Events) TicketValid(ticket string) bool {
	if e.key == nil || ticket == "" {
		return false
	}
	expText, mac, ok := strings.Cut(ticket, ".")
	exp, err := strconv.ParseInt(expText, 10, 64)
	// One spelling per expiry ("+1", "01" are not it): a ticket is the string issued.
	if !ok || err != nil || strconv.FormatInt(exp, 10) != expText || e.opts.Now().Unix() >= exp {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(mac), []byte(e.mac(exp))) == 1
}

func (e *Events) mac(exp int64) string {
	m := hmac.New(sha256.New, e.key)
	m.Write([]byte("flagsync ofrep event stream\x00" + strconv.FormatInt(exp, 10)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// RequestTicket is the ticket a stream request carries (query parameter "ticket").
func RequestTicket(r *http.Request) string { return r.URL.Query().Get("ticket") }

// streamURI is the request URI advertised in bulk responses.
func (e *Events) streamURI() string {
	if t := e.Ticket(); t != "" {
		return EventStreamPath + "?ticket=" + t
	}
	return EventStreamPath
}
