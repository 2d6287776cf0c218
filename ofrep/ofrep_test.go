package ofrep_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/ofrep"
)

const testFlags = `{
  "flags": {
    "bool_flag": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on",
      "metadata": {"owner": "team-a"}},
    "color": {"state": "ENABLED", "variants": {"red": "#f00", "blue": "#00f"}, "defaultVariant": "red",
      "targeting": {"if": [{"in": [{"var": "email"}, ["vip@example.com"]]}, "blue"]}},
    "limit": {"state": "ENABLED", "variants": {"low": 3, "high": 100}, "defaultVariant": "low"},
    "ratio": {"state": "ENABLED", "variants": {"a": 0.25, "b": 0.75}, "defaultVariant": "b"},
    "config": {"state": "ENABLED", "variants": {"v1": {"retries": 2, "mode": "fast"}}, "defaultVariant": "v1"},
    "off_flag": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "no_default": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": null},
    "staff_only": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
      "targeting": {"if": [{"==": [{"var": "role"}, "staff"]}, "on", "off"]}}
  },
  "metadata": {"flagSetId": "test", "version": "rev-1"}
}`

func loadSet(t testing.TB, doc string) *flagset.Set {
	t.Helper()
	s, problems, err := flagset.Load([]byte(doc))
	if err != nil || len(problems) > 0 {
		t.Fatalf("load test flags: %v %v", err, problems)
	}
	return s
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func do(t *testing.T, h http.Handler, method, path, body string, hdr map[string]string) reply {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	raw, _ := io.ReadAll(rec.Body)
	r := reply{status: rec.Code, header: rec.Header(), raw: string(raw)}
	if len(raw) > 0 && rec.Header().Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %q", method, path, raw)
		}
	}
	return r
}

func newHandler(t testing.TB, opts ofrep.Options) (*ofrep.Handler, *atomic.Pointer[flagset.Set]) {
	var cur atomic.Pointer[flagset.Set]
	cur.Store(loadSet(t, testFlags))
	return ofrep.NewHandler(cur.Load, opts), &cur
}

func TestSingleEvaluation(t *testing.T) {
	h, _ := newHandler(t, ofrep.Options{})
	cases := []struct {
		key, body string
		value     any
		hasValue  bool
		variant   string
		reason    string
	}{
		{"bool_flag", `{"context":{"targetingKey":"u1"}}`, true, true, "on", "STATIC"},
		{"color", `{"context":{"targetingKey":"u1","email":"vip@example.com"}}`, "#00f", true, "blue", "TARGETING_MATCH"},
		{"color", `{"context":{"targetingKey":"u1","email":"x@example.com"}}`, "#f00", true, "red", "DEFAULT"},
		{"limit", `{}`, 3.0, true, "low", "STATIC"},
		{"ratio", ``, 0.75, true, "b", "STATIC"},
		{"config", `{"context":{}}`, map[string]any{"retries": 2.0, "mode": "fast"}, true, "v1", "STATIC"},
		{"off_flag", `{"context":{"targetingKey":"u1"}}`, nil, false, "", "DISABLED"},
		{"no_default", `{"context":{"targetingKey":"u1"}}`, nil, false, "", "DEFAULT"},
		{"staff_only", `{"context":{"role":"staff"}}`, true, true, "on", "TARGETING_MATCH"},
	}
	for _, c := range cases {
		r := do(t, h, "POST", "/ofrep/v1/evaluate/flags/"+c.key, c.body, nil)
		if r.status != 200 {
			t.Errorf("%s: status %d %s", c.key, r.status, r.raw)
			continue
		}
		v, has := r.body["value"]
		if has != c.hasValue || (has && !jsonEqual(v, c.value)) {
			t.Errorf("%s: value %v (present %v), want %v (present %v)", c.key, v, has, c.value, c.hasValue)
		}
		if r.body["key"] != c.key || r.body["variant"] != c.variant || r.body["reason"] != c.reason {
			t.Errorf("%s: got %s, want variant %q reason %q", c.key, r.raw, c.variant, c.reason)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: content type %q", c.key, ct)
		}
	}
	// Flag metadata merges set metadata (flagSetId) and flag metadata (owner).
	r := do(t, h, "POST", "/ofrep/v1/evaluate/flags/bool_flag", `{}`, nil)
	md, _ := r.body["metadata"].(map[string]any)
	if md["owner"] != "team-a" || md["flagSetId"] != "test" {
		t.Errorf("metadata %v, want owner and flagSetId", md)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestSingleErrors(t *testing.T) {
	h, cur := newHandler(t, ofrep.Options{})
	cases := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"not found", "/ofrep/v1/evaluate/flags/nope", `{"context":{}}`, 404, "FLAG_NOT_FOUND"},
		{"body not json", "/ofrep/v1/evaluate/flags/bool_flag", `{"context":`, 400, "PARSE_ERROR"},
		{"context not object", "/ofrep/v1/evaluate/flags/bool_flag", `{"context":[1,2]}`, 400, "INVALID_CONTEXT"},
		{"targetingKey not string", "/ofrep/v1/evaluate/flags/bool_flag", `{"context":{"targetingKey":5}}`, 400, "INVALID_CONTEXT"},
		{"body too large", "/ofrep/v1/evaluate/flags/bool_flag", `{"context":{"x":"` + strings.Repeat("a", ofrep.MaxBodyBytes) + `"}}`, 400, "INVALID_CONTEXT"},
	}
	for _, c := range cases {
		r := do(t, h, "POST", c.path, c.body, nil)
		if r.status != c.status || r.body["errorCode"] != c.code || r.body["errorDetails"] == "" {
			t.Errorf("%s: %d %s, want %d %s with details", c.name, r.status, r.raw, c.status, c.code)
		}
		if c.status == 404 && r.body["key"] != "nope" {
			t.Errorf("%s: key %v", c.name, r.body["key"])
		}
	}
	if r := do(t, h, "GET", "/ofrep/v1/evaluate/flags/bool_flag", ``, nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", r.status)
	}

	// Before the first snapshot: 503 with Retry-After, not a crash.
	cur.Store(nil)
	r := do(t, h, "POST", "/ofrep/v1/evaluate/flags/bool_flag", `{}`, nil)
	if r.status != 503 || r.header.Get("Retry-After") == "" || r.body["errorDetails"] == nil {
		t.Errorf("no snapshot: %d %v %s", r.status, r.header, r.raw)
	}
}

func TestRequireTargetingKey(t *testing.T) {
	h, _ := newHandler(t, ofrep.Options{RequireTargetingKey: true})
	r := do(t, h, "POST", "/ofrep/v1/evaluate/flags/bool_flag", `{"context":{"email":"a@b"}}`, nil)
	if r.status != 400 || r.body["errorCode"] != "TARGETING_KEY_MISSING" || r.body["key"] != "bool_flag" {
		t.Fatalf("missing targetingKey: %d %s", r.status, r.raw)
	}
	if r := do(t, h, "POST", "/ofrep/v1/evaluate/flags/bool_flag", `{"context":{"targetingKey":"u"}}`, nil); r.status != 200 {
		t.Fatalf("with targetingKey: %d %s", r.status, r.raw)
	}
}

func TestTargetingParseError(t *testing.T) {
	// A rule that compiles but fails at evaluation time surfaces as an inline error.
	s := loadSet(t, `{"flags":{"f":{"state":"ENABLED","variants":{"a":"x","b":"y"},"defaultVariant":"a",
	  "targeting":{"if":[true,"zzz","a"]}}}}`)
	h := ofrep.NewHandler(func() *flagset.Set { return s }, ofrep.Options{})
	r := do(t, h, "POST", "/ofrep/v1/evaluate/flags/f", `{}`, nil)
	if r.status != 400 || r.body["errorCode"] != "GENERAL" || !strings.Contains(r.raw, "zzz") {
		t.Fatalf("unknown variant from rule: %d %s", r.status, r.raw)
	}
}

func TestBulkEvaluationAndETag(t *testing.T) {
	h, cur := newHandler(t, ofrep.Options{})
	body := `{"context":{"targetingKey":"u1","email":"vip@example.com"}}`
	r := do(t, h, "POST", "/ofrep/v1/evaluate/flags", body, nil)
	if r.status != 200 {
		t.Fatalf("bulk: %d %s", r.status, r.raw)
	}
	flags, _ := r.body["flags"].([]any)
	if len(flags) != 8 {
		t.Fatalf("bulk: %d flags, want 8: %s", len(flags), r.raw)
	}
	byKey := map[string]map[string]any{}
	for _, f := range flags {
		m := f.(map[string]any)
		byKey[m["key"].(string)] = m
	}
	if byKey["color"]["value"] != "#00f" || byKey["off_flag"]["reason"] != "DISABLED" || byKey["limit"]["value"] != 3.0 {
		t.Fatalf("bulk values wrong: %s", r.raw)
	}
	etag := r.header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || len(etag) < 10 {
		t.Fatalf("ETag %q", etag)
	}

	// Same snapshot and context → 304 without body; a list and weak tags match too.
	for _, inm := range []string{etag, `"other", ` + etag, "W/" + etag, "*"} {
		r2 := do(t, h, "POST", "/ofrep/v1/evaluate/flags", body, map[string]string{"If-None-Match": inm})
		if r2.status != http.StatusNotModified || r2.raw != "" {
			t.Fatalf("If-None-Match %s: %d %q", inm, r2.status, r2.raw)
		}
	}
	// Another context → another ETag.
	r3 := do(t, h, "POST", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"u2"}}`, map[string]string{"If-None-Match": etag})
	if r3.status != 200 || r3.header.Get("ETag") == etag {
		t.Fatalf("other context: %d etag %q", r3.status, r3.header.Get("ETag"))
	}
	// A new snapshot → 200 with a new ETag.
	cur.Store(loadSet(t, strings.Replace(testFlags, `"#00f"`, `"#0000ff"`, 1)))
	r4 := do(t, h, "POST", "/ofrep/v1/evaluate/flags", body, map[string]string{"If-None-Match": etag})
	if r4.status != 200 || r4.header.Get("ETag") == etag || !strings.Contains(r4.raw, "#0000ff") {
		t.Fatalf("new snapshot: %d etag %q %s", r4.status, r4.header.Get("ETag"), r4.raw)
	}
	// Request-level errors in bulk have no key.
	r5 := do(t, h, "POST", "/ofrep/v1/evaluate/flags", `{"context":"x"}`, nil)
	if r5.status != 400 || r5.body["errorCode"] != "INVALID_CONTEXT" {
		t.Fatalf("bulk invalid context: %d %s", r5.status, r5.raw)
	}
}

func TestBulkInlineErrors(t *testing.T) {
	s := loadSet(t, `{"flags":{
	  "good":{"state":"ENABLED","variants":{"a":"x"},"defaultVariant":"a"},
	  "bad":{"state":"ENABLED","variants":{"a":"x"},"defaultVariant":"a","targeting":{"if":[true,"nope","a"]}}}}`)
	h := ofrep.NewHandler(func() *flagset.Set { return s }, ofrep.Options{})
	r := do(t, h, "POST", "/ofrep/v1/evaluate/flags", `{}`, nil)
	if r.status != 200 {
		t.Fatalf("bulk: %d %s", r.status, r.raw)
	}
	flags := r.body["flags"].([]any)
	bad, good := flags[0].(map[string]any), flags[1].(map[string]any)
	if bad["key"] != "bad" || bad["errorCode"] != "GENERAL" || good["value"] != "x" {
		t.Fatalf("inline error: %s", r.raw)
	}
}

func TestAuth(t *testing.T) {
	h, _ := newHandler(t, ofrep.Options{APIKeys: []string{"k1"}, BearerTokens: []string{"t1"}})
	path := "/ofrep/v1/evaluate/flags/bool_flag"
	cases := []struct {
		hdr    map[string]string
		status int
	}{
		{nil, 401},
		{map[string]string{"X-API-Key": "k1"}, 200},
		{map[string]string{"X-API-Key": "wrong"}, 403},
		{map[string]string{"Authorization": "Bearer t1"}, 200},
		{map[string]string{"Authorization": "bearer t1"}, 200},
		{map[string]string{"Authorization": "Bearer k1"}, 403},
		{map[string]string{"Authorization": "Basic dTpw"}, 403},
	}
	for _, c := range cases {
		if r := do(t, h, "POST", path, `{}`, c.hdr); r.status != c.status {
			t.Errorf("headers %v: status %d, want %d", c.hdr, r.status, c.status)
		}
	}
}

func TestRateLimit(t *testing.T) {
	h, _ := newHandler(t, ofrep.Options{RateLimit: 0.5, RateBurst: 2})
	path := "/ofrep/v1/evaluate/flags/bool_flag"
	for i := 0; i < 2; i++ {
		if r := do(t, h, "POST", path, `{}`, nil); r.status != 200 {
			t.Fatalf("request %d within burst: %d", i, r.status)
		}
	}
	r := do(t, h, "POST", path, `{}`, nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "2" {
		t.Fatalf("over limit: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
}

func TestConfiguration(t *testing.T) {
	h, _ := newHandler(t, ofrep.Options{})
	r := do(t, h, "GET", "/ofrep/v1/configuration", ``, nil)
	if r.status != 200 || r.body["name"] != "flagsync" {
		t.Fatalf("configuration: %d %s", r.status, r.raw)
	}
}
