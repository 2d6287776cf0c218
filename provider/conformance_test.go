package provider

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/transport"
)

// The conformance suite (conformance/README.md) run end to end: flag file → file or
// Redis → this provider → the OpenFeature client. Differences from flagset's own
// results that come from the client, and how they are compared:
//   - the client returns the caller's default whenever the resolution has an error
//     code (so does flagset), and reports reason ERROR;
//   - a missing variant is "" in the client, null in the cases;
//   - the client hands out typed values (int64 for integers), compared as doubles
//     like the cases' numbers;
//   - targetingKey travels inside the attributes, exactly as the case gives it (the
//     client's flattening keeps it when the context's own targeting key is empty).

const conformanceDir = "../conformance"

type confSuite struct {
	Cases string `json:"cases"`
	Flags string `json:"flags"`
	Now   int64  `json:"now"`
}

type confCase struct {
	Name    string         `json:"name"`
	Flag    string         `json:"flag"`
	Type    string         `json:"type"`
	Default any            `json:"default"`
	Context map[string]any `json:"context"`
	Expect  struct {
		Value     any     `json:"value"`
		Variant   *string `json:"variant"`
		Reason    string  `json:"reason"`
		ErrorCode *string `json:"errorCode"`
	} `json:"expect"`
	ExpectMetadata map[string]any `json:"expectMetadata"`
}

func loadConformance(t *testing.T) []confSuite {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(conformanceDir, "suite.json"))
	if err != nil {
		t.Fatalf("conformance manifest: %v", err)
	}
	var m struct {
		Suites []confSuite `json:"suites"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("conformance/suite.json: %v", err)
	}
	if len(m.Suites) == 0 {
		t.Fatal("conformance/suite.json lists no suites")
	}
	return m.Suites
}

func readCases(t *testing.T, path string) []confCase {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []confCase
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var c confCase
		if err := json.Unmarshal(text, &c); err != nil {
			t.Fatalf("%s:%d: %v", path, line, err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

func TestConformanceFile(t *testing.T) {
	total := 0
	for _, s := range loadConformance(t) {
		p := NewFile(filepath.Join(conformanceDir, s.Flags), WithPollInterval(never), withFixedNow(s.Now))
		total += runConformance(t, s, p)
	}
	if total < 200 {
		t.Fatalf("ran %d conformance cases, want the whole suite (>= 200)", total)
	}
}

func TestConformanceRedis(t *testing.T) {
	_, c := newRedis(t)
	total := 0
	for i, s := range loadConformance(t) {
		raw, err := os.ReadFile(filepath.Join(conformanceDir, s.Flags))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := flagset.Parse(raw) // YAML flag files travel as JSON, like every snapshot
		if err != nil {
			t.Fatalf("%s: %v", s.Flags, err)
		}
		snapshot, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		set, _ := flagset.Compile(doc) // the revision of what a reader serves of it
		rev := set.Revision()
		prefix := fmt.Sprintf("{flagsync:conformance-%d}", i)
		if err := transport.Publish(context.Background(), c, prefix, snapshot, rev, 1); err != nil {
			t.Fatal(err)
		}
		total += runConformance(t, s, NewRedis(c, prefix, WithPollInterval(never), withFixedNow(s.Now)))
	}
	if total < 200 {
		t.Fatalf("ran %d conformance cases, want the whole suite (>= 200)", total)
	}
}

// runConformance runs one suite's cases through p with an OpenFeature client.
func runConformance(t *testing.T, s confSuite, p *Provider) int {
	t.Helper()
	api := isolated.NewAPI()
	defer func() { _ = api.Shutdown(context.Background()) }()
	if err := api.SetProviderAndWait(context.Background(), p); err != nil {
		t.Fatalf("%s: %v", s.Flags, err)
	}
	client := api.NewClient()
	cases := readCases(t, filepath.Join(conformanceDir, s.Cases))
	for _, c := range cases {
		got, err := evalCase(client, c)
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if msg := compareCase(c, got); msg != "" {
			t.Errorf("%s (flag %q, %s): %s", c.Name, c.Flag, s.Cases, msg)
		}
	}
	return len(cases)
}

// evalCase evaluates one case and returns the details with the value as JSON would hold it.
func evalCase(client *openfeature.Client, c confCase) (openfeature.InterfaceEvaluationDetails, error) {
	ctx := context.Background()
	ec := openfeature.NewTargetlessEvaluationContext(c.Context)
	var d openfeature.InterfaceEvaluationDetails
	switch c.Type {
	case "boolean":
		def, ok := c.Default.(bool)
		if !ok {
			return d, fmt.Errorf("default %v is not a boolean", c.Default)
		}
		r, _ := client.BooleanValueDetails(ctx, c.Flag, def, ec)
		d.Value, d.EvaluationDetails = r.Value, r.EvaluationDetails
	case "string":
		def, ok := c.Default.(string)
		if !ok {
			return d, fmt.Errorf("default %v is not a string", c.Default)
		}
		r, _ := client.StringValueDetails(ctx, c.Flag, def, ec)
		d.Value, d.EvaluationDetails = r.Value, r.EvaluationDetails
	case "integer":
		def, ok := c.Default.(float64)
		if !ok || def != math.Trunc(def) {
			return d, fmt.Errorf("default %v is not an integer", c.Default)
		}
		r, _ := client.IntValueDetails(ctx, c.Flag, int64(def), ec)
		d.Value, d.EvaluationDetails = float64(r.Value), r.EvaluationDetails
	case "float":
		def, ok := c.Default.(float64)
		if !ok {
			return d, fmt.Errorf("default %v is not a number", c.Default)
		}
		r, _ := client.FloatValueDetails(ctx, c.Flag, def, ec)
		d.Value, d.EvaluationDetails = r.Value, r.EvaluationDetails
	case "object":
		r, _ := client.ObjectValueDetails(ctx, c.Flag, c.Default, ec)
		d.Value, d.EvaluationDetails = r.Value, r.EvaluationDetails
	default:
		return d, fmt.Errorf("unknown type %q", c.Type)
	}
	return d, nil
}

func compareCase(c confCase, got openfeature.InterfaceEvaluationDetails) string {
	var diffs []string
	if !jsonEqual(got.Value, c.Expect.Value) {
		diffs = append(diffs, fmt.Sprintf("value %s, want %s", mustJSON(got.Value), mustJSON(c.Expect.Value)))
	}
	wantVariant := ""
	if c.Expect.Variant != nil {
		wantVariant = *c.Expect.Variant
	}
	if got.Variant != wantVariant {
		diffs = append(diffs, fmt.Sprintf("variant %q, want %q", got.Variant, wantVariant))
	}
	if string(got.Reason) != c.Expect.Reason {
		diffs = append(diffs, fmt.Sprintf("reason %s, want %s", got.Reason, c.Expect.Reason))
	}
	wantCode := ""
	if c.Expect.ErrorCode != nil {
		wantCode = *c.Expect.ErrorCode
	}
	if string(got.ErrorCode) != wantCode {
		diffs = append(diffs, fmt.Sprintf("errorCode %q, want %q (%s)", got.ErrorCode, wantCode, got.ErrorMessage))
	}
	if c.ExpectMetadata != nil && !jsonEqual(map[string]any(got.FlagMetadata), c.ExpectMetadata) {
		diffs = append(diffs, fmt.Sprintf("metadata %s, want %s", mustJSON(got.FlagMetadata), mustJSON(c.ExpectMetadata)))
	}
	return strings.Join(diffs, "; ")
}

// jsonEqual compares two values as JSON documents, every number as a double.
func jsonEqual(a, b any) bool {
	var na, nb any
	if json.Unmarshal([]byte(mustJSON(a)), &na) != nil || json.Unmarshal([]byte(mustJSON(b)), &nb) != nil {
		return false
	}
	return reflect.DeepEqual(na, nb)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<%v: %v>", v, err)
	}
	return string(b)
}
