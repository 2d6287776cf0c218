package lint

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)

func inputs(t *testing.T, names ...string) []Input {
	t.Helper()
	var out []Input
	for _, n := range names {
		p := filepath.Join("testdata", n)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Input{Path: p, Data: b})
	}
	return out
}

// got renders findings as "rule flag@line" for compact comparisons.
func got(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule+" "+f.Flag)
	}
	sort.Strings(out)
	return out
}

func TestCleanFile(t *testing.T) {
	fs, err := Lint(inputs(t, "clean.yaml"), Config{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 0 {
		t.Errorf("clean file has findings: %+v", fs)
	}
}

func TestMessyFile(t *testing.T) {
	fs, err := Lint(inputs(t, "messy.yaml"), Config{}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"default-variant wrong_default",
		"expiry-invalid bad_expiry",
		"expiry-past old_promo",
		"expiry-too-far forever_flag",
		"fractional-weights old_promo",
		"key-naming NewDashboard",
		"required-metadata NewDashboard",
		"targeting-types forever_flag",
		"targeting-unknown-variant NewDashboard",
		"unused-variant NewDashboard",
		// wrong_default has no targeting: its variants are an operator's choices.
	}
	if g := got(fs); strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
	}
	byRule := map[string]Finding{}
	for _, f := range fs {
		byRule[f.Rule+" "+f.Flag] = f
	}
	if f := byRule["key-naming NewDashboard"]; f.Line != 2 || byRule["expiry-past old_promo"].Line != 25 || f.Severity != SeverityError || f.File != "testdata/messy.yaml" {
		t.Errorf("key-naming finding: %+v", f)
	}
	if f := byRule["fractional-weights old_promo"]; !strings.Contains(f.Message, "sum to 97") || f.Line != 17 {
		t.Errorf("fractional finding: %+v", f)
	}
	if f := byRule["unused-variant NewDashboard"]; !strings.Contains(f.Message, `"maybe"`) {
		t.Errorf("unused variant should be maybe: %+v", f)
	}
	if f := byRule["targeting-unknown-variant NewDashboard"]; !strings.Contains(f.Message, `"yes"`) || f.Severity != SeverityError {
		t.Errorf("unknown variant: %+v", f)
	}
	if f := byRule["required-metadata NewDashboard"]; f.Message != "missing metadata: description" {
		t.Errorf("required metadata: %+v", f)
	}
	if f := byRule["expiry-invalid bad_expiry"]; !strings.Contains(f.Message, `"soon"`) || f.Path != "flags.bad_expiry.metadata.expiresAt" {
		t.Errorf("expiry-invalid: %+v", f)
	}
}

func TestDuplicatesAndParseErrors(t *testing.T) {
	fs, err := Lint(inputs(t, "clean.yaml", "other.json", "broken.json"), Config{}, now)
	if err != nil {
		t.Fatal(err)
	}
	g := got(fs)
	want := []string{"duplicate-key new_checkout", "parse "}
	if strings.Join(g, "|") != strings.Join(want, "|") {
		t.Fatalf("findings %q, want %q", g, want)
	}
	dup := fs[0]
	if dup.File != "testdata/other.json" || dup.Line != 3 || !strings.Contains(dup.Message, "testdata/clean.yaml") {
		t.Errorf("duplicate: %+v", dup)
	}
	if fs[1].File != "testdata/broken.json" || fs[1].Severity != SeverityError {
		t.Errorf("parse: %+v", fs[1])
	}
}

func TestConfigSwitches(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
disable: [unused-variant, key-naming]
severity: {expiry-past: error}
keyPattern: '^[A-Za-z]+(_[a-z]+)*$'
maxLifetime: 5y
`))
	if err == nil {
		t.Fatal("5y should not parse")
	}
	cfg, err = ParseConfig([]byte(`
disable: [unused-variant, key-naming, fractional-weights]
enable: [key-naming]
severity: {expiry-past: error}
keyPattern: '^[a-z_]+$'
maxLifetime: 5000d
requiredMetadata: [owner]
`))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Lint(inputs(t, "messy.yaml"), cfg, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"default-variant wrong_default",
		"expiry-invalid bad_expiry",
		"expiry-past old_promo",
		"key-naming NewDashboard",
		"targeting-types forever_flag",
		"targeting-unknown-variant NewDashboard",
	}
	if g := got(fs); strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
	}
	for _, f := range fs {
		if f.Rule == RuleExpiryPast && f.Severity != SeverityError {
			t.Errorf("severity override ignored: %+v", f)
		}
	}
	for _, bad := range []string{"disable: [nope]", "severity: {key-naming: fatal}", "keyPattern: '('", "unknownField: 1", "disable: [parse]"} {
		c, err := ParseConfig([]byte(bad))
		if err == nil {
			_, err = Lint(nil, c, now)
		}
		if err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestWriteFormats(t *testing.T) {
	fs := []Finding{
		{Rule: RuleKeyNaming, Severity: SeverityWarning, File: "flags/a,b.yaml", Line: 3, Flag: "Bad", Message: "100% wrong\nreally"},
		{Rule: RuleParse, Severity: SeverityError, File: "x.json", Message: "unexpected end"},
	}
	var b bytes.Buffer
	if err := Write(&b, FormatGitHub, fs); err != nil {
		t.Fatal(err)
	}
	wantGH := "::warning file=flags/a%2Cb.yaml,line=3,title=flagsync lint%3A key-naming::Bad: 100%25 wrong%0Areally\n" +
		"::error file=x.json,title=flagsync lint%3A parse::unexpected end\n"
	if b.String() != wantGH {
		t.Errorf("github:\n%s\nwant:\n%s", b.String(), wantGH)
	}
	b.Reset()
	Write(&b, FormatText, fs)
	if !strings.HasPrefix(b.String(), "flags/a,b.yaml:3: warning [key-naming] Bad: 100% wrong") {
		t.Errorf("text: %s", b.String())
	}
	b.Reset()
	Write(&b, FormatJSON, nil)
	var arr []Finding
	if err := json.Unmarshal(b.Bytes(), &arr); err != nil || arr == nil || len(arr) != 0 {
		t.Errorf("json of no findings: %q", b.String())
	}
	if err := Write(&b, "xml", fs); err == nil {
		t.Error("unknown format accepted")
	}
	if e, w := Count(fs); e != 1 || w != 1 {
		t.Errorf("count %d %d", e, w)
	}
}

func TestKeyLine(t *testing.T) {
	text := "metadata:\n  owner: me\nflags:\n  owner:\n    state: ENABLED\n"
	if l := keyLine(text, "owner"); l != 4 {
		t.Errorf("line %d, want 4 (the flag, not the metadata field)", l)
	}
	if l := keyLine(`{"flags":{"a":{}}}`, "a"); l != 1 {
		t.Errorf("one-line JSON: %d", l)
	}
	if l := keyLine("flags: {}", "zzz"); l != 0 {
		t.Errorf("missing key: %d", l)
	}
}

// TestCustomOperatorArgs: the evaluator accepts flagd operators with unusable
// arguments (like flagd, they are null at evaluation), so lint is what says so.
func TestCustomOperatorArgs(t *testing.T) {
	doc := `{"flags": {
	  "a": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
	        "metadata": {"owner": "x", "description": "x", "expiresAt": "2026-07-01T00:00:00Z"},
	        "targeting": {"if": [{"and": [{"sem_ver": [{"var": "v"}, "=="]}, {"$ref": "e"}]}, "on", "off"]}},
	  "b": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
	        "metadata": {"owner": "x", "description": "x", "expiresAt": "2026-07-01T00:00:00Z"},
	        "targeting": {"if": [{"sem_ver": [{"var": "v"}, "===", "1.0.0"]}, "on", {"fractional": []}]}}},
	  "$evaluators": {"e": {"starts_with": ["abc"]}}}`
	fs, err := Lint([]Input{{Path: "ops.json", Data: []byte(doc)}}, Config{}, now)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, f := range fs {
		if f.Rule == RuleCustomOperatorArgs {
			if f.Severity != SeverityError {
				t.Errorf("severity %s, want error", f.Severity)
			}
			msgs = append(msgs, f.Flag+": "+f.Message)
		}
	}
	sort.Strings(msgs)
	want := []string{
		"a: sem_ver takes 3 arguments, got 2: it always evaluates to null",
		"a: starts_with takes 2 arguments, got 1: it always evaluates to null",
		"b: fractional has no entries: it always evaluates to null",
		`b: sem_ver operator "===" is not one of = != < <= > >= ^ ~: it always evaluates to null`,
	}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
}

// TestKeyNamingMessage: with the default pattern the message says the rule in words
// and suggests a spelling that passes; with a team's own pattern it names the pattern.
func TestKeyNamingMessage(t *testing.T) {
	doc := []byte("flags:\n  newDashboard: {state: ENABLED, variants: {a: a}, defaultVariant: a, metadata: {owner: o, description: d}}\n" +
		"  Payments/New-PSP: {state: ENABLED, variants: {a: a}, defaultVariant: a, metadata: {owner: o, description: d}}\n")
	fs, err := Lint([]Input{{Path: "f.yaml", Data: doc}}, Config{}, now)
	if err != nil {
		t.Fatal(err)
	}
	msgs := map[string]string{}
	for _, f := range fs {
		msgs[f.Flag] = f.Message
	}
	if m := msgs["newDashboard"]; !strings.Contains(m, "not snake_case") || !strings.Contains(m, `e.g. "new_dashboard"`) {
		t.Errorf("newDashboard: %q", m)
	}
	if m := msgs["Payments/New-PSP"]; !strings.Contains(m, `e.g. "payments/new_psp"`) {
		t.Errorf("Payments/New-PSP: %q", m)
	}
	fs, _ = Lint([]Input{{Path: "f.yaml", Data: doc}}, Config{KeyPattern: `^[a-z]+$`}, now)
	if len(fs) == 0 || !strings.Contains(fs[0].Message, "does not match ^[a-z]+$") {
		t.Errorf("custom pattern: %+v", fs)
	}
}
