package consul

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStaleReadTooOldGoesToTheLeader uses a test server answering Consul's KV API
// headers: a stale read whose server last heard from the leader 10s ago (more than
// maxStale) must be repeated without ?stale, and the leader's answer used.
func TestStaleReadTooOldGoesToTheLeader(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		stale := r.URL.Query().Has("stale")
		w.Header().Set("X-Consul-Index", "7")
		w.Header().Set("X-Consul-KnownLeader", "true")
		value := "ZmFsc2U=" // "false": what a lagging follower still has
		if stale {
			w.Header().Set("X-Consul-LastContact", "10000")
		} else {
			w.Header().Set("X-Consul-LastContact", "0")
			value = "dHJ1ZQ==" // "true"
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[{"Key":"flags/a","Value":"` + value + `","ModifyIndex":7}]`))
	}))
	defer srv.Close()
	isolateConsulEnv(t)
	src := newSource(t, Config{Address: strings.TrimPrefix(srv.URL, "http://"), Prefix: "flags/", MaxStale: time.Second})
	res, err := src.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Overlays["a"].Value != true {
		t.Fatalf("a = %+v, want the leader's value true", res.Overlays["a"])
	}
	mu.Lock()
	defer mu.Unlock()
	if len(queries) != 2 || !strings.Contains(queries[0], "stale") || strings.Contains(queries[1], "stale") {
		t.Fatalf("queries = %q, want a stale read then a leader read", queries)
	}
}
