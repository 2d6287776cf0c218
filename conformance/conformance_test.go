package conformance

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/flagsync/flagsync/flagset"
)

// manifest is conformance/suite.json.
type manifest struct {
	Suites []suiteEntry `json:"suites"`
}

type suiteEntry struct {
	Cases string `json:"cases"`
	Flags string `json:"flags"`
	Now   int64  `json:"now"`
}

// testCase is one line of a cases/*.jsonl file.
type testCase struct {
	Name           string          `json:"name"`
	Flag           string          `json:"flag"`
	Type           string          `json:"type"`
	Default        any             `json:"default"`
	Context        map[string]any  `json:"context"`
	Expect         expectation     `json:"expect"`
	ExpectMetadata json.RawMessage `json:"expectMetadata"`
	line           int
}

type expectation struct {
	Value     any     `json:"value"`
	Variant   *string `json:"variant"`
	Reason    string  `json:"reason"`
	ErrorCode *string `json:"errorCode"`
}

type loadedSuite struct {
	suiteEntry
	cases []testCase
}

var types = map[string]flagset.Type{
	"boolean": flagset.TypeBoolean,
	"string":  flagset.TypeString,
	"integer": flagset.TypeInteger,
	"float":   flagset.TypeFloat,
	"object":  flagset.TypeObject,
}

func loadSuites(t *testing.T) []loadedSuite {
	t.Helper()
	data, err := os.ReadFile("suite.json")
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("suite.json: %v", err)
	}
	if len(m.Suites) == 0 {
		t.Fatal("suite.json lists no suites")
	}
	var out []loadedSuite
	for _, s := range m.Suites {
		out = append(out, loadedSuite{suiteEntry: s, cases: readCases(t, s.Cases)})
	}
	return out
}

func readCases(t *testing.T, path string) []testCase {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []testCase
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var c testCase
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		if c.Name == "" || c.Flag == "" || types[c.Type] == 0 || c.Expect.Reason == "" {
			t.Fatalf("%s:%d: case needs name, flag, a known type and expect.reason", path, n)
		}
		c.line = n
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cases
}

func loadSet(t *testing.T, path string) *flagset.Set {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	set, _, err := flagset.Load(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return set
}

// typedDefault converts a decoded JSON default to the Go type flagset uses for typ.
func typedDefault(typ string, v any) any {
	if f, ok := v.(float64); ok && typ == "integer" {
		return int64(f)
	}
	return v
}

// normalize turns every number into float64 so values from flagset (int64 for
// integers) and from decoded JSON compare with reflect.DeepEqual.
func normalize(v any) any {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case int:
		return float64(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func show(p *string) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprintf("%q", *p)
}

// checkResult compares one outcome with a case's expectations; it returns every mismatch.
func checkResult(c testCase, value any, variant, reason, code *string, metadata any) []string {
	var bad []string
	if !reflect.DeepEqual(normalize(value), normalize(c.Expect.Value)) {
		bad = append(bad, fmt.Sprintf("value: got %#v, want %#v", value, c.Expect.Value))
	}
	if show(variant) != show(c.Expect.Variant) {
		bad = append(bad, fmt.Sprintf("variant: got %s, want %s", show(variant), show(c.Expect.Variant)))
	}
	if show(reason) != show(&c.Expect.Reason) {
		bad = append(bad, fmt.Sprintf("reason: got %s, want %q", show(reason), c.Expect.Reason))
	}
	if show(code) != show(c.Expect.ErrorCode) {
		bad = append(bad, fmt.Sprintf("errorCode: got %s, want %s", show(code), show(c.Expect.ErrorCode)))
	}
	if c.ExpectMetadata != nil {
		var want any
		if err := json.Unmarshal(c.ExpectMetadata, &want); err != nil {
			bad = append(bad, fmt.Sprintf("expectMetadata: %v", err))
		} else if !reflect.DeepEqual(normalize(metadata), normalize(want)) {
			bad = append(bad, fmt.Sprintf("metadata: got %v, want %v", metadata, want))
		}
	}
	return bad
}

// goTypeOK checks the documented Go type of Result.Value for a successful evaluation.
func goTypeOK(typ string, v any) bool {
	switch typ {
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "integer":
		_, ok := v.(int64)
		return ok
	case "float":
		_, ok := v.(float64)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

func TestCasesFlagset(t *testing.T) {
	for _, s := range loadSuites(t) {
		set := loadSet(t, s.Flags)
		for _, c := range s.cases {
			res := set.EvaluateAt(c.Flag, types[c.Type], typedDefault(c.Type, c.Default), c.Context, s.Now)
			reason, code := string(res.Reason), string(res.ErrorCode)
			var variant *string
			if res.HasVariant {
				variant = &res.Variant
			}
			bad := checkResult(c, res.Value, variant, &reason, strPtr(code), res.Metadata)
			if res.HasVariant && !goTypeOK(c.Type, res.Value) {
				bad = append(bad, fmt.Sprintf("Go type of value: got %T for type %s", res.Value, c.Type))
			}
			if len(bad) > 0 {
				t.Errorf("case %q (%s:%d): %s", c.Name, s.Cases, c.line, strings.Join(bad, "; "))
			}
		}
	}
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// flagsyncBinary builds cmd/flagsync once per test run into a temporary directory.
func flagsyncBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flagsync-conformance-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "flagsync")
		out, err := exec.Command("go", "build", "-o", builtBin, "github.com/flagsync/flagsync/cmd/flagsync").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// cliLine is one output line of `flagsync eval`.
type cliLine struct {
	Flag      *string        `json:"flag"`
	Value     any            `json:"value"`
	Variant   *string        `json:"variant"`
	Reason    *string        `json:"reason"`
	ErrorCode *string        `json:"errorCode"`
	Metadata  map[string]any `json:"metadata"`
}

func TestCasesCLI(t *testing.T) {
	bin := flagsyncBinary(t)
	for _, s := range loadSuites(t) {
		cmd := exec.Command(bin, "eval", "--flags", s.Flags, "--cases", s.Cases, "--now", fmt.Sprint(s.Now))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("%s: flagsync eval: %v\n%s", s.Cases, err, stderr.String())
			continue
		}
		lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
		if len(lines) != len(s.cases) {
			t.Errorf("%s: %d output lines for %d cases", s.Cases, len(lines), len(s.cases))
			continue
		}
		for i, c := range s.cases {
			var out cliLine
			dec := json.NewDecoder(strings.NewReader(lines[i]))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&out); err != nil {
				t.Errorf("case %q: output line %q: %v", c.Name, lines[i], err)
				continue
			}
			bad := checkResult(c, out.Value, out.Variant, out.Reason, out.ErrorCode, out.Metadata)
			if out.Flag == nil || *out.Flag != c.Flag {
				bad = append(bad, fmt.Sprintf("flag: got %s", show(out.Flag)))
			}
			if out.Metadata == nil {
				bad = append(bad, "metadata missing")
			}
			var generic any
			_ = json.Unmarshal([]byte(lines[i]), &generic)
			if canon, err := flagset.CanonicalValue(generic); err != nil || string(canon) != lines[i] {
				bad = append(bad, fmt.Sprintf("line is not canonical JSON: %s", lines[i]))
			}
			if len(bad) > 0 {
				t.Errorf("case %q (%s:%d) via CLI: %s", c.Name, s.Cases, c.line, strings.Join(bad, "; "))
			}
		}
	}
}

// TestSuiteCoverage keeps the suite honest: enough cases, unique names, every reason
// and error code, every operator of the spec used somewhere.
func TestSuiteCoverage(t *testing.T) {
	suites := loadSuites(t)
	names := map[string]bool{}
	reasons := map[string]int{}
	codes := map[string]int{}
	total := 0
	ops := map[string]bool{}
	for _, s := range suites {
		for _, c := range s.cases {
			if names[c.Name] {
				t.Errorf("duplicate case name %q", c.Name)
			}
			names[c.Name] = true
			reasons[c.Expect.Reason]++
			if c.Expect.ErrorCode != nil {
				codes[*c.Expect.ErrorCode]++
			}
			total++
		}
		collectOperators(t, s.Flags, ops)
		checkFlagReferences(t, s)
	}
	if total < 200 {
		t.Errorf("%d cases, want >= 200", total)
	}
	for _, r := range []string{"STATIC", "TARGETING_MATCH", "DEFAULT", "DISABLED", "ERROR"} {
		if reasons[r] == 0 {
			t.Errorf("no case expects reason %s", r)
		}
	}
	for _, c := range []string{"FLAG_NOT_FOUND", "PARSE_ERROR", "TYPE_MISMATCH", "GENERAL"} {
		if codes[c] == 0 {
			t.Errorf("no case expects error code %s", c)
		}
	}
	want := []string{"var", "missing", "missing_some", "if", "?:", "==", "===", "!=", "!==", "!", "!!",
		"or", "and", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "min", "max", "in", "cat", "substr",
		"merge", "map", "filter", "reduce", "all", "some", "none", "starts_with", "ends_with", "sem_ver",
		"fractional", "$ref"}
	var missing []string
	for _, op := range want {
		if !ops[op] {
			missing = append(missing, op)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("operators not covered by any flag file: %v", missing)
	}
}

// collectOperators records every single-key object key found in targeting rules and
// $evaluators of a flag file (JSON or YAML, decoded through flagset.Parse).
func collectOperators(t *testing.T, path string, ops map[string]bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := flagset.Parse(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if len(x) == 1 {
					ops[k] = true
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	raws := []json.RawMessage{}
	for _, f := range doc.Flags {
		raws = append(raws, f.Targeting)
	}
	for _, r := range doc.Evaluators {
		raws = append(raws, r)
	}
	for _, r := range raws {
		if len(r) == 0 {
			continue
		}
		var v any
		if err := json.Unmarshal(r, &v); err != nil {
			t.Fatalf("%s: targeting: %v", path, err)
		}
		walk(v)
	}
}

// murmur3 is MurmurHash3 x86 32-bit, written for these tests independently of
// flagset's murmur3 so that the vectors do not merely echo the implementation.
func murmur3(data []byte, seed uint32) uint32 {
	const c1, c2 = 0xcc9e2d51, 0x1b873593
	h := seed
	n := len(data)
	i := 0
	for ; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= c1
		k = k<<15 | k>>17
		k *= c2
		h ^= k
		h = h<<13 | h>>19
		h = h*5 + 0xe6546b64
	}
	var k uint32
	switch n - i {
	case 3:
		k ^= uint32(data[i+2]) << 16
		fallthrough
	case 2:
		k ^= uint32(data[i+1]) << 8
		fallthrough
	case 1:
		k ^= uint32(data[i])
		k *= c1
		k = k<<15 | k>>17
		k *= c2
		h ^= k
	}
	h ^= uint32(n)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestMurmur3Vectors(t *testing.T) {
	// Published reference values anchor the independent implementation itself.
	for in, want := range map[string]uint32{"": 0, "hello": 613153351, "The quick brown fox jumps over the lazy dog": 0x2e4ff723} {
		if got := murmur3([]byte(in), 0); got != want {
			t.Fatalf("test murmur3(%q) = %d, want %d", in, got, want)
		}
	}
	var vecs []struct {
		Input string `json:"input"`
		Hash  uint32 `json:"hash"`
	}
	readJSON(t, "vectors/murmur3.json", &vecs)
	if len(vecs) < 30 {
		t.Errorf("%d murmur3 vectors, want >= 30", len(vecs))
	}
	tails := map[int]bool{}
	nonASCII := false
	for _, v := range vecs {
		b := []byte(v.Input)
		tails[len(b)%4] = true
		nonASCII = nonASCII || strings.ContainsFunc(v.Input, func(r rune) bool { return r > 127 })
		if got := murmur3(b, 0); got != v.Hash {
			t.Errorf("vector %q: test murmur3 = %d, file says %d", v.Input, got, v.Hash)
		}

	}
	if len(tails) != 4 || !nonASCII {
		t.Errorf("murmur3 vectors must cover every tail length and non-ASCII input (tails %v)", tails)
	}
}

type fracVector struct {
	BucketingKey string  `json:"bucketingKey"`
	Entries      [][]any `json:"entries"`
	Hash         uint32  `json:"hash"`
	TotalWeight  uint64  `json:"totalWeight"`
	Bucket       uint64  `json:"bucket"`
	Index        int     `json:"index"`
	Variant      string  `json:"variant"`
}

// bucketOf applies the documented algorithm: a weight defaults to 1 (also when
// null), must be a whole number in [0, 2^31-1] (else the rule yields null), and
// elements after it are ignored; bucket = hash*total>>32; first entry whose
// cumulative weight exceeds the bucket wins. ok is false when the rule yields null.
func bucketOf(key string, entries [][]any) (hash uint32, total, bucket uint64, index int, ok bool) {
	weights := make([]uint64, len(entries))
	var sum int64
	for i, e := range entries {
		w := 1.0
		if len(e) > 1 && e[1] != nil {
			f, isNum := e[1].(float64)
			if !isNum || f != math.Trunc(f) || f < 0 || f > math.MaxInt32 {
				return 0, 0, 0, 0, false
			}
			w = f
		}
		weights[i] = uint64(w)
		sum += int64(w)
	}
	if sum <= 0 || sum > math.MaxInt32 {
		return 0, 0, 0, 0, false
	}
	hash = murmur3([]byte(key), 0)
	total = uint64(sum)
	bucket = uint64(hash) * total >> 32
	var cum uint64
	for i, w := range weights {
		cum += w
		if cum > bucket {
			return hash, total, bucket, i, true
		}
	}
	return 0, 0, 0, 0, false
}

func TestFractionalVectors(t *testing.T) {
	var vecs []fracVector
	readJSON(t, "vectors/fractional.json", &vecs)
	if len(vecs) < 30 {
		t.Errorf("%d fractional vectors, want >= 30", len(vecs))
	}
	for _, v := range vecs {
		hash, total, bucket, index, ok := bucketOf(v.BucketingKey, v.Entries)
		name, _ := v.Entries[index][0].(string)
		if !ok || hash != v.Hash || total != v.TotalWeight || bucket != v.Bucket || index != v.Index || name != v.Variant {
			t.Errorf("vector %q: computed hash %d total %d bucket %d index %d variant %q; file says %d %d %d %d %q",
				v.BucketingKey, hash, total, bucket, index, name, v.Hash, v.TotalWeight, v.Bucket, v.Index, v.Variant)
			continue
		}
		// The same bucketing through flagset: an explicit bucketing key as first argument.
		args := []any{v.BucketingKey}
		variants := map[string]any{}
		for _, e := range v.Entries {
			args = append(args, e)
			variants[e[0].(string)] = e[0]
		}
		doc := map[string]any{"flags": map[string]any{"f": map[string]any{
			"state": "ENABLED", "variants": variants, "targeting": map[string]any{"fractional": args},
		}}}
		data, _ := json.Marshal(doc)
		set, problems, err := flagset.Load(data)
		if err != nil || len(problems) > 0 {
			t.Fatalf("vector %q: load: %v %v", v.BucketingKey, err, problems)
		}
		res := set.EvaluateAt("f", flagset.TypeString, "", nil, 0)
		if res.Variant != v.Variant || res.Reason != flagset.ReasonTargetingMatch {
			t.Errorf("vector %q: flagset picked %q (%s %s), want %q", v.BucketingKey, res.Variant, res.Reason, res.ErrorCode, v.Variant)
		}
	}
}

// TestFractionalCasesIndependent recomputes, with the test's own murmur3, the expected
// variant of every case whose flag is a literal fractional rule, so the case file's
// known answers are not just a recording of some implementation's output.
func TestFractionalCasesIndependent(t *testing.T) {
	checked := 0
	for _, s := range loadSuites(t) {
		data, err := os.ReadFile(s.Flags)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := flagset.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range s.cases {
			f := doc.Flags[c.Flag]
			if f == nil || len(f.Targeting) == 0 || c.Expect.Reason != "TARGETING_MATCH" {
				continue
			}
			var rule struct {
				Fractional []any `json:"fractional"`
			}
			if json.Unmarshal(f.Targeting, &rule) != nil || len(rule.Fractional) == 0 {
				continue
			}
			args := rule.Fractional
			var key string
			switch first := args[0].(type) {
			case []any:
				tk, _ := c.Context["targetingKey"].(string)
				if tk == "" {
					continue // no bucketing key: null, not a TARGETING_MATCH
				}
				key = c.Flag + tk
			case map[string]any:
				name, ok := first["var"].(string)
				if !ok {
					continue // computed bucketing keys are covered by fractional.json
				}
				args = args[1:]
				var isString bool
				if key, isString = c.Context[name].(string); !isString {
					if c.Context[name] != nil {
						continue // a non-string bucketing value is null
					}
					tk, _ := c.Context["targetingKey"].(string)
					key = c.Flag + tk
				}
			default:
				continue
			}
			var entries [][]any
			literal := true
			for _, a := range args {
				e, ok := a.([]any)
				if !ok {
					literal = false
					break
				}
				for _, x := range e {
					switch x.(type) {
					case string, float64:
					default:
						literal = false
					}
				}
				entries = append(entries, e)
			}
			if !literal {
				continue
			}
			_, _, _, index, ok := bucketOf(key, entries)
			if !ok {
				t.Errorf("case %q: algorithm yields null but the case expects %s", c.Name, show(c.Expect.Variant))
				continue
			}
			want, isName := entries[index][0].(string)
			if !isName {
				continue // boolean, number and null names are pinned by their cases
			}
			if c.Expect.Variant == nil || *c.Expect.Variant != want {
				t.Errorf("case %q: algorithm picks %q, case expects %s", c.Name, want, show(c.Expect.Variant))
			}
			checked++
		}
	}
	if checked < 30 {
		t.Errorf("only %d fractional cases recomputed, want >= 30", checked)
	}
}

func TestCanonicalVectors(t *testing.T) {
	var vecs []struct {
		Name              string `json:"name"`
		Input             string `json:"input"`
		Canonical         string `json:"canonical"`
		RevisionCanonical string `json:"revisionCanonical"`
		Revision          string `json:"revision"`
	}
	readJSON(t, "vectors/canonical.json", &vecs)
	if len(vecs) < 15 {
		t.Errorf("%d canonical vectors, want >= 15", len(vecs))
	}
	for _, v := range vecs {
		rc := v.RevisionCanonical
		if rc == "" {
			rc = v.Canonical
		}
		sum := sha256.Sum256([]byte(rc))
		if hex.EncodeToString(sum[:]) != v.Revision {
			t.Errorf("vector %q: revision is not the SHA-256 of its revision canonical", v.Name)
		}
		doc, err := flagset.Parse([]byte(v.Input))
		if err != nil {
			t.Errorf("vector %q: parse: %v", v.Name, err)
			continue
		}
		// The publishing path writes the canonical encoding and the revision.
		set, problems := flagset.CompileStrict(doc)
		if len(problems) > 0 {
			t.Errorf("vector %q: problems %v", v.Name, problems)
			continue
		}
		got, err := set.Canonical()
		if err != nil {
			t.Errorf("vector %q: canonical: %v", v.Name, err)
		} else if string(got) != v.Canonical {
			t.Errorf("vector %q: canonical\n got  %s\n want %s", v.Name, got, v.Canonical)
		}
		if version, ok := doc.Metadata[flagset.MetaVersion]; ok {
			// The revision ignores metadata.version, which a set reports as its revision.
			delete(doc.Metadata, flagset.MetaVersion)
			set, _ = flagset.CompileStrict(doc)
			doc.Metadata[flagset.MetaVersion] = version
		}
		if rev := set.Revision(); rev != v.Revision {
			t.Errorf("vector %q: revision %s, want %s", v.Name, rev, v.Revision)
		}
		// A reader's set computes the same bytes and revision when asked.
		read, _ := flagset.Compile(doc)
		if again, err := read.Canonical(); err != nil || string(again) != v.Canonical {
			t.Errorf("vector %q: reader's canonical %s (err %v)", v.Name, again, err)
		}
	}
}

// checkFlagReferences catches typos: a case naming a flag its file lacks must expect
// FLAG_NOT_FOUND, and every flag of the file is exercised by some case.
func checkFlagReferences(t *testing.T, s loadedSuite) {
	t.Helper()
	data, err := os.ReadFile(s.Flags)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := flagset.Parse(data)
	if err != nil {
		t.Fatalf("%s: %v", s.Flags, err)
	}
	used := map[string]bool{}
	for _, c := range s.cases {
		used[c.Flag] = true
		_, defined := doc.Flags[c.Flag]
		notFound := c.Expect.ErrorCode != nil && *c.Expect.ErrorCode == "FLAG_NOT_FOUND"
		if defined == notFound {
			t.Errorf("case %q: flag %q defined=%v in %s but expects FLAG_NOT_FOUND=%v", c.Name, c.Flag, defined, s.Flags, notFound)
		}
	}
	for key := range doc.Flags {
		if !used[key] {
			t.Errorf("%s: flag %q is not used by any case of %s", s.Flags, key, s.Cases)
		}
	}
}

// TestDifferencesFromFlagdArePinned: every case docs/FORMAT.md "Differences from
// flagd" names as pinning a difference exists in the suite, so the table cannot
// point at a case that was renamed or removed.
func TestDifferencesFromFlagdArePinned(t *testing.T) {
	data, err := os.ReadFile("../docs/FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "## Differences from flagd")
	if start < 0 {
		t.Fatal(`docs/FORMAT.md has no "Differences from flagd" section`)
	}
	section := text[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	names := map[string]bool{}
	for _, s := range loadSuites(t) {
		for _, c := range s.cases {
			names[c.Name] = true
		}
	}
	checked := 0
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(line, " | ")
		pinned := cells[len(cells)-1]
		quoted := strings.Split(pinned, "`")
		for i := 1; i < len(quoted); i += 2 { // the odd pieces are inside backticks
			name := quoted[i]
			if !strings.Contains(name, "/") || !strings.Contains(name, " ") {
				continue // not a case name (a test function, an operator)
			}
			if !names[name] {
				t.Errorf("FORMAT.md pins a difference on %q, which is not a conformance case", name)
			}
			checked++
		}
	}
	if checked < 15 {
		t.Errorf("only %d pinning cases found in the differences table", checked)
	}
}

// yamlVector is one entry of vectors/yaml.json: a YAML document and either the
// value Parse must give metadata.v, or error: the document must not parse.
type yamlVector struct {
	Name  string `json:"name"`
	Input string `json:"input"`
	Value any    `json:"value"`
	Error bool   `json:"error"`
}

// TestYAMLVectors pins the YAML subset of docs/FORMAT.md (the Python tests read the
// same file): core-schema scalars, the core tags only, string keys, no merge keys,
// finite numbers, alias and depth limits.
func TestYAMLVectors(t *testing.T) {
	var vecs []yamlVector
	readJSON(t, "vectors/yaml.json", &vecs)
	if len(vecs) < 50 {
		t.Errorf("%d YAML vectors, want >= 50", len(vecs))
	}
	for _, v := range vecs {
		doc, err := flagset.Parse([]byte(v.Input))
		if v.Error {
			if err == nil {
				t.Errorf("vector %q: parsed, want an error", v.Name)
			}
			continue
		}
		if err != nil {
			t.Errorf("vector %q: %v", v.Name, err)
			continue
		}
		if got := doc.Metadata["v"]; !reflect.DeepEqual(normalize(got), normalize(v.Value)) {
			t.Errorf("vector %q: metadata.v = %#v, want %#v", v.Name, got, v.Value)
		}
	}
}
