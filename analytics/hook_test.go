package analytics

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
)

var update = flag.Bool("update", false, "rewrite testdata/golden-*.csv")

type goldenFile struct {
	Configs []struct {
		Name       string   `json:"name"`
		Attributes []string `json:"attributes"`
		Hash       bool     `json:"hash"`
		Salt       string   `json:"salt"`
	} `json:"configs"`
	Cases []struct {
		At           time.Time      `json:"at"`
		Flag         string         `json:"flag"`
		Variant      string         `json:"variant"`
		Value        any            `json:"value"`
		Reason       string         `json:"reason"`
		ErrorCode    string         `json:"errorCode"`
		TargetingKey string         `json:"targetingKey"`
		Attrs        map[string]any `json:"attrs"`
	} `json:"cases"`
}

// TestGoldenRows pins the CSV format; the Python hook is tested against the same files.
func TestGoldenRows(t *testing.T) {
	raw, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g goldenFile
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	for _, c := range g.Configs {
		w := newWriter(Config{Attributes: c.Attributes, HashTargetingKey: c.Hash, Salt: []byte(c.Salt)}, nil)
		out := []byte(w.header)
		// Through the queue, as Finally and the writer do.
		var q queue
		for _, tc := range g.Cases {
			q.add(tc.At.UnixNano(), tc.Flag, tc.Variant, tc.Reason, tc.ErrorCode, tc.Value,
				openfeature.NewEvaluationContext(tc.TargetingKey, tc.Attrs), c.Attributes)
		}
		d := decoder{buf: q.buf}
		for d.more() {
			out, _ = w.appendRow(out, &d, q.objs)
		}
		path := filepath.Join("testdata", "golden-"+c.Name+".csv")
		if *update {
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, want) {
			t.Errorf("%s: rows differ from %s:\n got: %s\nwant: %s", c.Name, path, out, want)
		}
		// Every file must be valid CSV with one field per column.
		rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
		if err != nil {
			t.Fatalf("%s: not valid CSV: %v", c.Name, err)
		}
		if len(rows) != len(g.Cases)+1 || len(rows[0]) != 7+len(c.Attributes) {
			t.Errorf("%s: %d rows of %d fields", c.Name, len(rows), len(rows[0]))
		}
	}
}

// TestValuesThroughQueue checks that every value kind the queue encodes formats as
// formatValue does, and the cached timestamp prefix as the plain layout.
func TestValuesThroughQueue(t *testing.T) {
	values := []any{nil, true, false, "x", "a,b", " lead", json.Number("1.50"), float64(3), 0.1, -0.0,
		1e21, 1.5e-7, math.NaN(), math.Inf(-1), float32(0.1), int(-7), int64(1 << 62), int32(-3),
		uint64(1 << 63), int8(5), uint32(9), openfeature.Reason("named"),
		map[string]any{"b": 1.0, "a": "<&>"}, []any{nil, "\x01"}, struct{ A int }{1}}
	w := newWriter(Config{}, nil)
	var q queue
	var want []byte
	for i, v := range values {
		at := time.Date(1969+i, 12, 31, 23, 59, 59, (i+1)*7_654_321, time.UTC).UnixNano()
		q.add(at, "f", "", "", "", v, openfeature.EvaluationContext{}, nil)
		want = time.Unix(0, at).UTC().AppendFormat(want, "2006-01-02T15:04:05.000Z")
		want = append(appendField(append(want, ",f,,"...), formatValue(v)), ",,,\n"...)
	}
	var got []byte
	d := decoder{buf: q.buf}
	for d.more() {
		got, _ = w.appendRow(got, &d, q.objs)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{nil, ""}, {true, "true"}, {"x", "x"}, {float64(3), "3"}, {0.1, "0.1"}, {-0.0, "0"},
		{1e21, "1e+21"}, {1e20, "100000000000000000000"}, {1.5e-7, "1.5e-07"}, {0.000001, "0.000001"},
		{int64(-7), "-7"}, {map[string]any{"b": 1.0, "a": "<&>"}, `{"a":"<&>","b":1}`},
		{[]any{nil, "\x01"}, `[null,"\u0001"]`}, {struct {
			B int    `json:"b"`
			A string `json:"a"`
		}{2, "x"}, `{"a":"x","b":2}`},
	} {
		if got := formatValue(tc.in); got != tc.want {
			t.Errorf("formatValue(%#v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// testProvider resolves every flag to a fixed variant; "missing" is not found.
type testProvider struct{ openfeature.NoopProvider }

func (testProvider) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: "test"} }

func (testProvider) BooleanEvaluation(_ context.Context, flag string, def bool, _ openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	if flag == "missing" {
		return openfeature.BoolResolutionDetail{Value: def, ProviderResolutionDetail: openfeature.ProviderResolutionDetail{
			ResolutionError: openfeature.NewFlagNotFoundResolutionError("flag missing not found"), Reason: openfeature.ErrorReason}}
	}
	return openfeature.BoolResolutionDetail{Value: true, ProviderResolutionDetail: openfeature.ProviderResolutionDetail{Variant: "on", Reason: openfeature.TargetingMatchReason}}
}

var domainSeq struct {
	sync.Mutex
	n int
}

func newClient(t testing.TB) *openfeature.Client {
	t.Helper()
	domainSeq.Lock()
	domainSeq.n++
	domain := "analytics-test-" + string(rune('a'+domainSeq.n))
	domainSeq.Unlock()
	if err := openfeature.SetNamedProviderAndWait(domain, testProvider{}); err != nil {
		t.Fatal(err)
	}
	return openfeature.NewClient(domain)
}

func readRows(t *testing.T, dir string) (files []string, rows [][]string) {
	t.Helper()
	files, _ = filepath.Glob(filepath.Join(dir, "*.csv"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(recs) == 0 || strings.Join(recs[0], ",") != Header([]string{"plan"}) {
			t.Fatalf("%s: header %v", f, recs)
		}
		rows = append(rows, recs[1:]...)
	}
	return files, rows
}

func TestHookRecordsEvaluations(t *testing.T) {
	dir := t.TempDir()
	h, err := New(Config{Dir: dir, Attributes: []string{"plan"}, HashTargetingKey: true, Salt: []byte("pepper")})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	c.AddHooks(h)
	ctx := context.Background()
	ec := openfeature.NewEvaluationContext("user-1", map[string]any{"plan": "pro", "email": "not@recorded"})
	before := time.Now().Truncate(time.Millisecond)
	if !c.Boolean(ctx, "checkout_v2", false, ec) {
		t.Fatal("provider not used")
	}
	c.Boolean(ctx, "missing", false, ec)
	after := time.Now()
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_, rows := readRows(t, dir)
	if len(rows) != 2 {
		t.Fatalf("rows %v", rows)
	}
	w := newWriter(h.cfg, nil)
	if r := rows[0]; r[1] != "checkout_v2" || r[2] != "on" || r[3] != "true" || r[4] != "TARGETING_MATCH" || r[5] != "" || r[6] != string(w.appendTargeting(nil, []byte("user-1"))) || r[7] != "pro" {
		t.Errorf("row %q", r)
	}
	if r := rows[1]; r[1] != "missing" || r[3] != "false" || r[4] != "ERROR" || r[5] != "FLAG_NOT_FOUND" {
		t.Errorf("error row %q", r)
	}
	if strings.Contains(strings.Join(rows[0], ","), "user-1") || strings.Contains(strings.Join(rows[0], ","), "not@recorded") {
		t.Error("raw targeting key or unselected attribute recorded")
	}
	// The default clock (wall time at the last drain plus monotonic time since) stamps
	// the evaluation time.
	for _, r := range rows {
		if at, err := time.Parse(time.RFC3339, r[0]); err != nil || at.Before(before) || at.After(after) {
			t.Errorf("timestamp %q not within [%v, %v]: %v", r[0], before, after, err)
		}
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c.Boolean(ctx, "after_close", false, ec)
	if h.Dropped() != 1 || h.Written() != 2 {
		t.Errorf("dropped %d written %d", h.Dropped(), h.Written())
	}
}

func TestRotationBySizeAndAge(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h, err := New(Config{Dir: dir, Attributes: []string{"plan"}, MaxBytes: 1000, MaxAge: time.Hour, Now: clock, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	c.AddHooks(h)
	ctx := context.Background()
	ec := openfeature.NewEvaluationContext("user-1", map[string]any{"plan": "pro"})
	for range 50 { // ~70 bytes a row: several files by size
		c.Boolean(ctx, "f", false, ec)
	}
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	bySize, _ := readRows(t, dir)
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	c.Boolean(ctx, "f", false, ec)
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	files, rows := readRows(t, dir)
	if len(bySize) < 3 {
		t.Errorf("size rotation made %d files", len(bySize))
	}
	if len(files) != len(bySize)+1 {
		t.Errorf("age rotation: %d files before, %d after", len(bySize), len(files))
	}
	if len(rows) != 51 || h.Dropped() != 0 {
		t.Errorf("%d rows, %d dropped", len(rows), h.Dropped())
	}
	for _, f := range files {
		if st, _ := os.Stat(f); st.Size() > 1000+200 {
			t.Errorf("%s is %d bytes", f, st.Size())
		}
	}
}

func TestDropsWhenFull(t *testing.T) {
	h, err := New(Config{Dir: t.TempDir(), BufferSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	hc := openfeature.NewHookContext("f", openfeature.Boolean, false, openfeature.ClientMetadata{}, openfeature.Metadata{}, openfeature.NewEvaluationContext("u", nil))
	d := openfeature.InterfaceEvaluationDetails{Value: true}
	const n = 10000
	for range n {
		h.Finally(context.Background(), hc, d, openfeature.HookHints{})
	}
	if err := h.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.Dropped() == 0 || h.Dropped()+h.Written() != n {
		t.Errorf("dropped %d + written %d != %d", h.Dropped(), h.Written(), n)
	}
}

func TestConcurrentEvaluations(t *testing.T) {
	dir := t.TempDir()
	h, err := New(Config{Dir: dir, Attributes: []string{"plan"}, BufferSize: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	c.AddHooks(h)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ec := openfeature.NewEvaluationContext("user", map[string]any{"plan": float64(g)})
			for range 200 {
				c.Boolean(context.Background(), "f", false, ec)
			}
		}()
	}
	wg.Wait()
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, rows := readRows(t, dir)
	if len(rows) != 1600 || h.Dropped() != 0 {
		t.Errorf("%d rows, %d dropped", len(rows), h.Dropped())
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("missing Dir accepted")
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := New(Config{Dir: filepath.Join(file, "sub")}); err == nil {
		t.Error("unusable Dir accepted")
	}
}
