package daemon

import (
	"net/http"
	"sync"
)

// Route is one registered route and its auth decision.
type Route struct {
	Pattern string // net/http pattern, e.g. "POST /api/v1/sync"
	Access  string // open, read, metrics, ofrep, admin — or undecided (refused)
}

// routeTable is the server's mux, keeping every route's auth decision. Routes are
// added with handle and a decision; Handle and HandleFunc (the http.ServeMux methods)
// still work but register the route as undecided, which is refused at runtime and
// fails TestRouteTable, so a route cannot be added without saying who may call it.
type routeTable struct {
	mux   *http.ServeMux
	guard func(pattern string, a access, h http.Handler) http.Handler

	mu     sync.Mutex
	routes []Route
}

func newRouteTable(guard func(string, access, http.Handler) http.Handler) *routeTable {
	return &routeTable{mux: http.NewServeMux(), guard: guard}
}

// handle registers h for pattern behind the decision a.
func (t *routeTable) handle(pattern string, a access, h http.Handler) {
	t.mu.Lock()
	t.routes = append(t.routes, Route{Pattern: pattern, Access: a.String()})
	t.mu.Unlock()
	t.mux.Handle(pattern, t.guard(pattern, a, h))
}

// Handle registers h without an auth decision: it is refused until given one
// (use handle).
func (t *routeTable) Handle(pattern string, h http.Handler) { t.handle(pattern, accessUndecided, h) }

// HandleFunc is Handle for a function.
func (t *routeTable) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	t.handle(pattern, accessUndecided, http.HandlerFunc(h))
}

func (t *routeTable) ServeHTTP(w http.ResponseWriter, r *http.Request) { t.mux.ServeHTTP(w, r) }

func (t *routeTable) list() []Route {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Route(nil), t.routes...)
}
