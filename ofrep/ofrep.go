// Package ofrep serves the OpenFeature Remote Evaluation Protocol (OFREP) over HTTP
// from the current flagsync snapshot, so applications in any language can evaluate
// flags with an off-the-shelf OFREP provider:
//
//	POST /ofrep/v1/evaluate/flags/{key}   single flag evaluation
//	POST /ofrep/v1/evaluate/flags         bulk evaluation (ETag / If-None-Match → 304)
//	GET  /ofrep/v1/configuration          provider configuration (extension)
//	GET  /ofrep/v1/events                 change notification stream (ADR-0008, with Options.Events)
//
// Evaluation is flagset.Set.Evaluate, the same evaluator as the Go provider and the
// daemon, so OFREP answers match the file and Redis readers exactly. OFREP requests
// carry no type: the variant value is returned as stored (boolean, string, number or
// object). docs/OFREP.md describes status codes and configuration.
package ofrep

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flagsync/flagsync/flagset"
)

// Error codes of OFREP failure responses.
const (
	CodeFlagNotFound        = "FLAG_NOT_FOUND"
	CodeParseError          = "PARSE_ERROR"
	CodeTargetingKeyMissing = "TARGETING_KEY_MISSING"
	CodeInvalidContext      = "INVALID_CONTEXT"
	CodeGeneral             = "GENERAL"
)

// MaxBodyBytes bounds a request body; evaluation contexts are small.
const MaxBodyBytes = 1 << 20

// Options configures the handler. The zero value serves without authentication and
// without rate limit.
type Options struct {
	// APIKeys are accepted in the X-API-Key header; BearerTokens in
	// "Authorization: Bearer <token>". When both are empty no credentials are needed.
	// A request without credentials gets 401, one with wrong credentials 403.
	APIKeys      []string
	BearerTokens []string
	// RequireTargetingKey makes requests whose context has no targetingKey fail with
	// 400 TARGETING_KEY_MISSING (flagd semantics, the default, need none for flags
	// without targeting).
	RequireTargetingKey bool
	// RateLimit is the sustained number of requests per second the handler serves
	// (all clients together); above it, 429 with Retry-After. 0 disables the limit.
	RateLimit float64
	// RateBurst is how many requests may exceed RateLimit at once (default RateLimit).
	RateBurst int
	// PollIntervalMs is the minimum polling interval advertised in the configuration
	// endpoint for bulk (client-side) providers; default 30000.
	PollIntervalMs int
	// Events, when set, serves the change notification stream at EventStreamPath and
	// advertises it in every bulk response ("eventStreams"). The caller announces
	// new revisions on it; it outlives the handler (a daemon reload keeps streams).
	Events *Events
	// OnShed, when set, is called for each request answered 429 (metrics).
	OnShed func()
	Logger *slog.Logger
}

// Handler serves OFREP. Mount it at "/ofrep/" (it matches full paths).
type Handler struct {
	snapshot func() *flagset.Set
	opts     Options
	limiter  *bucket
	mux      *http.ServeMux
	log      *slog.Logger
}

// NewHandler returns an OFREP handler that evaluates against snapshot(), called once
// per request; snapshot may return nil while no snapshot is loaded (requests then get
// 503 with a Retry-After).
func NewHandler(snapshot func() *flagset.Set, opts Options) *Handler {
	h := &Handler{snapshot: snapshot, opts: opts, log: opts.Logger}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.opts.PollIntervalMs <= 0 {
		h.opts.PollIntervalMs = 30000
	}
	if opts.RateLimit > 0 {
		burst := opts.RateBurst
		if burst <= 0 {
			burst = int(math.Ceil(opts.RateLimit))
		}
		h.limiter = newBucket(opts.RateLimit, burst, time.Now)
	}
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("POST /ofrep/v1/evaluate/flags/{key}", h.single)
	h.mux.HandleFunc("POST /ofrep/v1/evaluate/flags", h.bulk)
	h.mux.HandleFunc("GET /ofrep/v1/configuration", h.configuration)
	if opts.Events != nil {
		h.mux.Handle("GET "+EventStreamPath, opts.Events)
	}
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if status := h.authorize(r); status != 0 && !h.streamTicket(r) {
		// Bodies are empty per spec; the header helps clients tell the schemes apart.
		w.Header().Set("WWW-Authenticate", `Bearer realm="ofrep"`)
		w.WriteHeader(status)
		return
	}
	if h.limiter != nil {
		if ok, wait := h.limiter.take(); !ok {
			if h.opts.OnShed != nil {
				h.opts.OnShed()
			}
			secs := int(math.Ceil(wait.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			writeJSON(w, http.StatusTooManyRequests, generalError{ErrorDetails: "rate limit reached"})
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

// authorize returns 0 when the request may proceed, else 401 (no credentials) or 403
// (wrong credentials).
func (h *Handler) authorize(r *http.Request) int {
	if len(h.opts.APIKeys) == 0 && len(h.opts.BearerTokens) == 0 {
		return 0
	}
	presented := false
	if k := r.Header.Get("X-API-Key"); k != "" {
		presented = true
		if anyEqual(h.opts.APIKeys, k) {
			return 0
		}
	}
	if a := r.Header.Get("Authorization"); a != "" {
		presented = true
		if scheme, tok, ok := strings.Cut(a, " "); ok && strings.EqualFold(scheme, "Bearer") &&
			anyEqual(h.opts.BearerTokens, strings.TrimSpace(tok)) {
			return 0
		}
	}
	if presented {
		return http.StatusForbidden
	}
	return http.StatusUnauthorized
}

// streamTicket tells whether r is an event stream request with a valid ticket, which
// stands in for credentials there (EventSource cannot send headers).
func (h *Handler) streamTicket(r *http.Request) bool {
	return h.opts.Events != nil && r.URL.Path == EventStreamPath && h.opts.Events.TicketValid(RequestTicket(r))
}

// anyEqual compares in constant time so response timing does not leak key prefixes.
func anyEqual(allowed []string, got string) bool {
	ok := false
	for _, a := range allowed {
		if subtle.ConstantTimeCompare([]byte(a), []byte(got)) == 1 {
			ok = true
		}
	}
	return ok
}

// Wire types (OFREP openapi: serverEvaluationSuccess, evaluationFailure,
// bulkEvaluationSuccess, generalErrorResponse).

// success is an evaluation result. Value is omitted when the caller's code default
// applies (flag disabled, or no default variant and no rule match), as in OFREP's
// codeDefaultFlag; Variant is always present because some providers require it.
type success struct {
	Key      string         `json:"key"`
	Value    any            `json:"value,omitempty"`
	Reason   string         `json:"reason"`
	Variant  string         `json:"variant"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

type failure struct {
	Key          string `json:"key,omitempty"`
	ErrorCode    string `json:"errorCode"`
	ErrorDetails string `json:"errorDetails,omitempty"`
}

type generalError struct {
	ErrorDetails string `json:"errorDetails"`
}

type bulkResponse struct {
	Flags        []any          `json:"flags"`
	EventStreams []eventStream  `json:"eventStreams,omitempty"`
	Metadata     map[string]any `json:"metadata,omitempty"`
}

// eventStream is an ADR-0008 eventStreams entry. The endpoint form (a request URI
// the provider resolves against its own OFREP base URL's origin) keeps working
// behind proxies that change the host name.
type eventStream struct {
	Type     string              `json:"type"`
	Endpoint eventStreamEndpoint `json:"endpoint"`
}

type eventStreamEndpoint struct {
	RequestURI string `json:"requestUri"`
}

// request is the body of both evaluation endpoints. An empty body means an empty
// context.
type request struct {
	Context json.RawMessage `json:"context"`
}

// readContext decodes the evaluation context; on failure it returns the OFREP error
// code and details for a 400.
func (h *Handler) readContext(r *http.Request) (map[string]any, *failure) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &failure{ErrorCode: CodeInvalidContext, ErrorDetails: fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes)}
		}
		return nil, &failure{ErrorCode: CodeGeneral, ErrorDetails: "reading request body: " + err.Error()}
	}
	ctx := map[string]any{}
	if len(bytes.TrimSpace(body)) == 0 {
		return h.checkTargetingKey(ctx)
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, &failure{ErrorCode: CodeParseError, ErrorDetails: "request body is not a JSON object: " + err.Error()}
	}
	if raw := bytes.TrimSpace(req.Context); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if raw[0] != '{' {
			return nil, &failure{ErrorCode: CodeInvalidContext, ErrorDetails: "context must be a JSON object"}
		}
		if err := json.Unmarshal(raw, &ctx); err != nil {
			return nil, &failure{ErrorCode: CodeInvalidContext, ErrorDetails: "context: " + err.Error()}
		}
	}
	if tk, ok := ctx["targetingKey"]; ok {
		if _, isString := tk.(string); !isString {
			return nil, &failure{ErrorCode: CodeInvalidContext, ErrorDetails: "context.targetingKey must be a string"}
		}
	}
	return h.checkTargetingKey(ctx)
}

func (h *Handler) checkTargetingKey(ctx map[string]any) (map[string]any, *failure) {
	if h.opts.RequireTargetingKey {
		if tk, _ := ctx["targetingKey"].(string); tk == "" {
			return nil, &failure{ErrorCode: CodeTargetingKeyMissing, ErrorDetails: "context.targetingKey is required"}
		}
	}
	return ctx, nil
}

// current returns the snapshot or answers 503 itself.
func (h *Handler) current(w http.ResponseWriter) *flagset.Set {
	s := h.snapshot()
	if s == nil {
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, generalError{ErrorDetails: "no flag snapshot loaded yet"})
	}
	return s
}

func (h *Handler) single(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	ctx, fail := h.readContext(r)
	if fail != nil {
		fail.Key = key
		writeJSON(w, http.StatusBadRequest, fail)
		return
	}
	set := h.current(w)
	if set == nil {
		return
	}
	res, fail := evaluate(set, key, ctx)
	switch {
	case fail == nil:
		writeJSON(w, http.StatusOK, res)
	case fail.ErrorCode == CodeFlagNotFound:
		writeJSON(w, http.StatusNotFound, fail)
	default:
		writeJSON(w, http.StatusBadRequest, fail)
	}
}

func (h *Handler) bulk(w http.ResponseWriter, r *http.Request) {
	ctx, fail := h.readContext(r)
	if fail != nil {
		writeJSON(w, http.StatusBadRequest, fail)
		return
	}
	if want := r.URL.Query().Get("flagConfigEtag"); want != "" && h.opts.Events != nil {
		// A refetch after an event from a replica that published before this one.
		want = strings.Trim(strings.TrimPrefix(want, "W/"), `"`)
		h.opts.Events.awaitRevision(r.Context(), want, func() string {
			if s := h.snapshot(); s != nil {
				return s.Revision()
			}
			return ""
		})
	}
	set := h.current(w)
	if set == nil {
		return
	}
	keys := set.Keys()
	out := bulkResponse{Flags: make([]any, 0, len(keys))}
	for _, k := range keys {
		if res, fail := evaluate(set, k, ctx); fail != nil {
			out.Flags = append(out.Flags, fail)
		} else {
			out.Flags = append(out.Flags, res)
		}
	}
	if id := set.FlagSetID(); id != "" {
		out.Metadata = map[string]any{flagset.MetaFlagSetID: id}
	}
	if h.opts.Events != nil {
		out.EventStreams = []eventStream{{Type: "sse", Endpoint: eventStreamEndpoint{RequestURI: h.opts.Events.streamURI()}}}
	}
	body, err := json.Marshal(out)
	if err != nil {
		h.log.Error("ofrep: encoding bulk response", "err", err)
		writeJSON(w, http.StatusInternalServerError, generalError{ErrorDetails: "encoding response: " + err.Error()})
		return
	}
	// The ETag is a digest of the exact response: it changes with the snapshot
	// revision, with the context, with time-based rules ($flagd.timestamp) and with
	// the event stream ticket (once a ticket window), and never otherwise, so
	// If-None-Match can be answered with 304 safely.
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// etagMatches implements If-None-Match's weak comparison over a list of tags.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

func (h *Handler) configuration(w http.ResponseWriter, r *http.Request) {
	invalidation := map[string]any{
		"polling": map[string]any{"enabled": true, "minPollingIntervalMs": h.opts.PollIntervalMs},
	}
	if h.opts.Events != nil {
		// Not (yet) an OFREP field: providers learn the stream from the bulk
		// response's eventStreams; this tells people and tools reading the
		// configuration that it is there.
		invalidation["eventStreams"] = map[string]any{"enabled": true, "types": []string{"sse"}}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name": "flagsync",
		"capabilities": map[string]any{
			"cacheInvalidation": invalidation,
			"flagEvaluation": map[string]any{
				"supportedTypes": []string{"boolean", "string", "int", "float", "object"},
			},
		},
	})
}

// evaluate resolves key for ctx with the flag's own value type.
func evaluate(set *flagset.Set, key string, ctx map[string]any) (*success, *failure) {
	f, ok := set.Flag(key)
	if !ok {
		return nil, &failure{Key: key, ErrorCode: CodeFlagNotFound, ErrorDetails: fmt.Sprintf("flag %q not found", key)}
	}
	var res flagset.Result
	types := valueTypes(f)
	for i, typ := range types {
		res = set.Evaluate(key, typ, nil, ctx)
		// Variants of mixed types: the selected variant decides, so try the next type.
		if res.ErrorCode != flagset.CodeTypeMismatch || i == len(types)-1 {
			break
		}
	}
	if res.ErrorCode != flagset.CodeNone {
		code := string(res.ErrorCode)
		switch res.ErrorCode {
		case flagset.CodeParseError, flagset.CodeGeneral:
		default:
			code = CodeGeneral
		}
		return nil, &failure{Key: key, ErrorCode: code, ErrorDetails: fmt.Sprintf("flag %q: %s", key, res.ErrorMessage)}
	}
	return &success{Key: key, Value: res.Value, Reason: string(res.Reason), Variant: res.Variant,
		Metadata: metadata(res.Metadata)}, nil
}

// valueTypes lists the flagset types of f's variants in a fixed order. Flags nearly
// always have variants of a single type, so this is nearly always one type.
func valueTypes(f *flagset.Flag) []flagset.Type {
	var seen [flagset.TypeObject + 1]bool
	for _, v := range f.Variants {
		seen[valueType(v)] = true
	}
	out := make([]flagset.Type, 0, 1)
	for t := flagset.TypeBoolean; t <= flagset.TypeObject; t++ {
		if seen[t] {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		out = append(out, flagset.TypeObject)
	}
	return out
}

func valueType(v any) flagset.Type {
	switch v.(type) {
	case bool:
		return flagset.TypeBoolean
	case string:
		return flagset.TypeString
	case float64, float32, int, int64, int32, uint, uint64, uint32, json.Number:
		// TypeFloat returns the number exactly as stored; JSON writes 3.0 as 3.
		return flagset.TypeFloat
	default:
		return flagset.TypeObject
	}
}

// metadata keeps the entries OFREP allows (boolean, string, number).
func metadata(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil
	}
	for _, v := range m {
		switch v.(type) {
		case bool, string, float64, int, int64:
		default:
			return filterMetadata(m)
		}
	}
	return m
}

func filterMetadata(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch v.(type) {
		case bool, string, float64, int, int64:
			out[k] = v
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// bucket is a token-bucket rate limiter shared by all clients of a handler.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newBucket(rate float64, burst int, now func() time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now(), now: now}
}

// take consumes a token; when none is left it reports how long until one is.
func (b *bucket) take() (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.now()
	b.tokens = math.Min(b.burst, b.tokens+t.Sub(b.last).Seconds()*b.rate)
	b.last = t
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}
