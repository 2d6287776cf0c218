package daemon

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/ofrep"
	"github.com/flagsync/flagsync/statuspage"
)

// Server serves /healthz, /readyz, /metrics, /api/v1/*, OFREP under /ofrep/ and the
// status page at / for the daemon currently running. It outlives config reloads: Set
// swaps the daemon (and its OFREP options) behind it.
type Server struct {
	cur     atomic.Pointer[Daemon]
	ofrep   atomic.Pointer[ofrep.Handler] // nil when http.ofrep.enabled is false
	metrics *Metrics
	mux     *http.ServeMux
}

// NewServer returns the HTTP handler for m's registry; call Set before serving.
func NewServer(m *Metrics) *Server {
	s := &Server{metrics: m, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", m.Handler())
	s.mux.HandleFunc("GET /api/v1/status", s.status)
	s.mux.HandleFunc("GET /api/v1/snapshot", s.snapshot)
	s.mux.HandleFunc("POST /api/v1/sync", s.sync)
	s.mux.HandleFunc("POST /api/v1/release", s.release)
	s.mux.HandleFunc("/ofrep/", func(w http.ResponseWriter, r *http.Request) {
		if h := s.ofrep.Load(); h != nil {
			h.ServeHTTP(w, r)
			return
		}
		http.Error(w, "OFREP is disabled (http.ofrep.enabled: false)", http.StatusNotFound)
	})
	s.mux.Handle("GET /{$}", statuspage.Handler(func() (*flagset.Set, statuspage.Data) {
		if d := s.cur.Load(); d != nil {
			return d.statusPage()
		}
		return nil, statuspage.Data{}
	}))
	return s
}

// Set makes d the daemon served, with the OFREP options of its configuration. Until
// d publishes, OFREP keeps answering from the previous daemon's flags.
func (s *Server) Set(d *Daemon) {
	d.carryFlagSet(s.cur.Load())
	var h *ofrep.Handler
	if o := d.cfg.HTTP.OFREP; o.On() {
		h = ofrep.NewHandler(s.flagSet, ofrep.Options{APIKeys: o.APIKeys, BearerTokens: o.BearerTokens,
			RequireTargetingKey: o.RequireTargetingKey, RateLimit: o.RateLimit, RateBurst: o.RateBurst, Logger: d.log})
	}
	s.cur.Store(d)
	s.ofrep.Store(h)
}

// Daemon is the daemon served (nil before Set).
func (s *Server) Daemon() *Daemon { return s.cur.Load() }

// flagSet is the served daemon's current set, read once per OFREP request.
func (s *Server) flagSet() *flagset.Set {
	if d := s.cur.Load(); d != nil {
		return d.FlagSet()
	}
	return nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if d := s.cur.Load(); d != nil && d.Ready() {
		_, _ = w.Write([]byte("ready\n"))
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte("no snapshot published yet\n"))
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	d := s.cur.Load()
	if d == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Status
		HA *HAStatus `json:"ha,omitempty"`
	}{d.Status(), d.HAStatus()})
}

func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	d := s.cur.Load()
	var b []byte
	if d != nil {
		b = d.Snapshot()
	}
	if b == nil {
		http.Error(w, "no snapshot yet", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// sync runs a sync now (POST /api/v1/sync, ?force=true to skip the guards) and
// answers with the resulting status; 409 when the sync reported an error.
func (s *Server) sync(w http.ResponseWriter, r *http.Request) {
	d := s.cur.Load()
	if d == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	force, _ := strconv.ParseBool(r.URL.Query().Get("force"))
	rep, err := d.Sync(r.Context(), force)
	code := http.StatusOK
	body := map[string]any{"result": rep.Result, "revision": rep.Revision, "generation": rep.Generation, "flags": rep.Flags}
	if err != nil {
		code = http.StatusConflict
		body["error"] = err.Error()
	}
	writeJSON(w, code, body)
}

// release is the operator's release of a held source (POST /api/v1/release,
// ?source=NAME; every source without it): the source's withheld removals publish now
// and its guard baseline starts over. It answers like sync; 404 for an unknown source.
func (s *Server) release(w http.ResponseWriter, r *http.Request) {
	d := s.cur.Load()
	if d == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	rep, err := d.Release(r.Context(), r.URL.Query().Get("source"))
	code := http.StatusOK
	body := map[string]any{"result": rep.Result, "revision": rep.Revision, "generation": rep.Generation, "flags": rep.Flags, "held": rep.Held}
	switch {
	case errors.Is(err, ErrUnknownSource):
		code = http.StatusNotFound
	case err != nil:
		code = http.StatusConflict
	}
	if err != nil {
		body["error"] = err.Error()
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
