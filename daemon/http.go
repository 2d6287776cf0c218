package daemon

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/ofrep"
	"github.com/flagsync/flagsync/statuspage"
)

// Server serves /healthz, /readyz, /metrics, /api/v1/*, OFREP under /ofrep/ and the
// status page at / for the daemon currently running. It outlives config reloads: Set
// swaps the daemon (with its OFREP options, auth and body limit) behind it. Every
// route declares who may call it (see routeTable and docs/SECURITY.md).
type Server struct {
	cur     atomic.Pointer[Daemon]
	ofrep   atomic.Pointer[ofrep.Handler] // nil when http.ofrep.enabled is false
	events  *ofrep.Events                 // OFREP change notifications; outlives reloads
	auth    atomic.Pointer[authPolicy]    // nil before Set: read routes open, admin refused
	maxBody atomic.Int64
	metrics *Metrics
	mux     *routeTable
	feed    *Feed // every set the served daemons publish, across reloads
}

// NewServer returns the HTTP handler for m's registry; call Set before serving.
func NewServer(m *Metrics) *Server {
	s := &Server{metrics: m, events: ofrep.NewEvents(ofrep.EventsOptions{})}
	// OFREP's event streams hear of every set the served daemons publish through the
	// same feed as the flagd sync port; the hub sends only a revision it has not sent
	// yet, so a reload serving the same flags sends nothing.
	s.feed = newFeed(func(set *flagset.Set) { s.events.Announce(set.Revision()) })
	s.maxBody.Store(DefaultMaxBodyBytes)
	// One server per registry in the daemon; a second one (tests) keeps the first's gauge.
	_ = m.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "flagsync_ofrep_event_streams",
		Help: "OFREP change notification streams open (GET /ofrep/v1/events).",
	}, func() float64 { return float64(s.events.Streams()) }))
	s.mux = newRouteTable(s.guard)
	s.mux.handle("GET /healthz", accessOpen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	}))
	s.mux.handle("GET /readyz", accessOpen, http.HandlerFunc(s.readyz))
	s.mux.handle("GET /metrics", accessMetrics, m.Handler())
	s.mux.handle("GET /api/v1/status", accessRead, http.HandlerFunc(s.status))
	s.mux.handle("GET /api/v1/snapshot", accessRead, http.HandlerFunc(s.snapshot))
	s.mux.handle("POST /api/v1/sync", accessAdmin, http.HandlerFunc(s.sync))
	s.mux.handle("POST /api/v1/release", accessAdmin, http.HandlerFunc(s.release))
	serveOFREP := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := s.ofrep.Load(); h != nil {
			h.ServeHTTP(w, r)
			return
		}
		http.Error(w, "OFREP is disabled (http.ofrep.enabled: false)", http.StatusNotFound)
	})
	s.mux.handle("/ofrep/", accessOFREP, serveOFREP)
	s.mux.handle("GET "+ofrep.EventStreamPath, accessOFREPStream, serveOFREP)
	s.mux.handle("GET /{$}", accessRead, statuspage.Handler(func() (*flagset.Set, statuspage.Data) {
		if d := s.cur.Load(); d != nil {
			return d.statusPage()
		}
		return nil, statuspage.Data{}
	}))
	return s
}

// Set makes d the daemon served, with the OFREP options, auth and limits of its
// configuration. Until d publishes, OFREP keeps answering from the previous daemon's
// flags.
func (s *Server) Set(d *Daemon) {
	d.carryFlagSet(s.cur.Load())
	var h *ofrep.Handler
	if o := d.cfg.HTTP.OFREP; o.On() {
		// The server checks credentials for every route (http.auth and the OFREP
		// keys), so the handler itself runs without.
		h = ofrep.NewHandler(s.flagSet, ofrep.Options{RequireTargetingKey: o.RequireTargetingKey,
			RateLimit: o.RateLimit, RateBurst: o.RateBurst, Events: s.events, OnShed: s.metrics.OFREPShed.Inc, Logger: d.log})
		s.events.SetMaxStreams(o.MaxEventStreams)
		warnRefetchBurst(d.log, o)
	}
	p, err := d.cfg.HTTP.policy()
	if err != nil {
		// Only a Config not made by ParseConfig can get here; refuse rather than open.
		d.log.Error("http auth: cannot read the tokens; every route but health is refused", "err", err)
		p = &authPolicy{closed: true}
	}
	s.maxBody.Store(d.cfg.HTTP.Limits.maxBody())
	s.auth.Store(p)
	s.cur.Store(d)
	s.ofrep.Store(h)
	d.flagSet.attach(s.feed)
	if !p.closed {
		logExposure(d.log, &d.cfg.HTTP, p)
	}
}

// warnRefetchBurst warns when the rate limit cannot absorb the refetches one change
// causes: every client with an event stream refetches at once, and a shed refetch
// leaves that client on the old flags until the next change.
func warnRefetchBurst(log *slog.Logger, o OFREPConfig) {
	if o.RateLimit <= 0 {
		return
	}
	burst := o.RateBurst
	if burst <= 0 {
		burst = int(math.Ceil(o.RateLimit))
	}
	streams := o.MaxEventStreams
	if streams <= 0 {
		streams = ofrep.DefaultMaxStreams
	}
	if burst < streams {
		log.Warn("http.ofrep: rateBurst is below maxEventStreams: after a change, event stream clients beyond the burst are refused their refetch (429) and keep the old flags until the next change; raise rateBurst or lower maxEventStreams",
			"rateBurst", burst, "maxEventStreams", streams)
	}
}

// CloseStreams ends the OFREP event streams: http.Server.Shutdown waits for handlers,
// and a stream's never returns by itself (NewHTTPServer registers this).
func (s *Server) CloseStreams() { s.events.Close() }

// Routes lists every route with its auth decision ("undecided" for a route added
// with Handle/HandleFunc, which is refused at runtime).
func (s *Server) Routes() []Route { return s.mux.list() }

// Feed announces each flag set the served daemons publish (the flagd sync port).
func (s *Server) Feed() *Feed { return s.feed }

// Daemon is the daemon served (nil before Set).
func (s *Server) Daemon() *Daemon { return s.cur.Load() }

// flagSet is the served daemon's current set, read once per OFREP request.
func (s *Server) flagSet() *flagset.Set {
	if d := s.cur.Load(); d != nil {
		return d.FlagSet()
	}
	return nil
}

// ServeHTTP bounds the request body (http.limits.maxBodyBytes) and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, s.maxBody.Load())
	}
	s.mux.ServeHTTP(w, r)
}

// guard wraps a route's handler with its auth decision.
func (s *Server) guard(pattern string, a access, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := s.auth.Load()
		if p == nil {
			p = &authPolicy{}
		}
		dec, reloadErrs := p.authorize(r, a, time.Now())
		if dec.code != 0 && a == accessOFREPStream && !p.closed && s.events.TicketValid(ofrep.RequestTicket(r)) {
			// The ticket came with a bulk evaluation this caller was allowed.
			dec = decision{}
		}
		log := s.logger()
		for _, err := range reloadErrs {
			log.Warn("http auth: a token file changed but cannot be read; its previous tokens stay valid", "err", err)
		}
		if dec.code == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if a == accessUndecided {
			log.Error("http route without an auth decision refused", "route", pattern)
		}
		s.metrics.HTTPRefused.WithLabelValues(pattern, strconv.Itoa(dec.code)).Inc()
		// Never the credential: the route, who asked and why it was refused.
		log.Debug("http request refused", "route", pattern, "access", a.String(), "remote", r.RemoteAddr, "code", dec.code, "reason", dec.reason)
		if dec.code == http.StatusUnauthorized {
			w.Header().Add("WWW-Authenticate", `Bearer realm="flagsync"`)
			if a == accessRead {
				// Lets a browser ask for a token (as the password) for the status page.
				w.Header().Add("WWW-Authenticate", `Basic realm="flagsync", charset="UTF-8"`)
			}
		}
		if a == accessOFREP {
			w.WriteHeader(dec.code) // OFREP answers 401/403 with an empty body
			return
		}
		http.Error(w, dec.reason, dec.code)
	})
}

// logger is the served daemon's logger (the default one before Set).
func (s *Server) logger() *slog.Logger {
	if d := s.cur.Load(); d != nil {
		return d.log
	}
	return slog.Default()
}

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
