package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/flagsync/flagsync/internal/testsvc"
)

// lintNow keeps the expiry rules of these tests independent of the day they run.
const lintNow = "--now=2026-12-01T00:00:00Z"

// TestLintKeyNamingFailsByDefault: the naming rule is enforced, not advised, so a
// camelCase key fails CI without any lint configuration.
func TestLintKeyNamingFailsByDefault(t *testing.T) {
	dir := writeFiles(t, map[string]string{"flags.yaml": `flags:
  newDashboard:
    state: ENABLED
    variants: {"on": true, "off": false}
    defaultVariant: "off"
    metadata: {owner: web, description: New dashboard}
`})
	code, out, _ := runCmd(t, dir, "lint", lintNow, "flags.yaml")
	if code != 1 || !strings.Contains(out, "flags.yaml:2: error [key-naming] newDashboard") {
		t.Errorf("code %d, out %q; want exit 1 with a key-naming error on line 2", code, out)
	}
}

// TestLintProductPatternsClean: the patterns the product documents lint clean with
// --max-warnings 0 — boolean kill switches flipped only by an overlay, nested keys
// (payments/new_psp, SOURCES.md), and flags created from bare store values.
func TestLintProductPatternsClean(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"flags.yaml": `flags:
  payments_kill_switch:
    state: ENABLED
    variants: {"on": true, "off": false}
    defaultVariant: "off"
    metadata: {owner: payments, description: Stops card payments when on}
  payments/new_psp:
    state: ENABLED
    variants: {"on": true, "off": false}
    defaultVariant: "off"
    targeting: {fractional: [["on", 10], ["off", 90]]}
    metadata: {owner: payments, description: New payment provider, expiresAt: "2027-02-01T00:00:00Z"}
  checkout/button_color:
    state: ENABLED
    variants: {blue: "#1f6feb", green: "#2da44e"}
    defaultVariant: blue
    metadata: {owner: web, description: Button colour switched by an overlay}
`,
		"flagsync.yaml": "flagSetId: patterns\nsources:\n" +
			"  - {name: git, type: file, path: flags.yaml}\n" +
			"  - {name: env, type: env, prefix: LINTPAT_FLAG_}\n" +
			"outputs: {file: {path: out/flags.json}}\n",
	})
	t.Setenv("LINTPAT_FLAG_PAYMENTS_KILL_SWITCH", "true")
	t.Setenv("LINTPAT_FLAG_MAINTENANCE_BANNER", "Back at 6")
	for _, args := range [][]string{
		{"lint", lintNow, "--format=github", "--max-warnings=0", "flags.yaml"},
		{"lint", lintNow, "--format=github", "--max-warnings=0", "--config", "flagsync.yaml"},
	} {
		if code, out, errOut := runCmd(t, dir, args...); code != 0 || out != "" {
			t.Errorf("%v: code %d, out %q, stderr %q; want a clean exit 0", args, code, out, errOut)
		}
	}
}

// TestLintKeyNamingNested defines the rule: snake_case segments separated by "/".
func TestLintKeyNamingNested(t *testing.T) {
	for key, ok := range map[string]bool{
		"payments/new_psp": true, "a/b/c_d": true, "beta_mode": true, "v2_search": true,
		"Payments/new_psp": false, "payments//x": false, "payments/": false, "/payments": false,
		"payments/newPsp": false, "payments/new-psp": false, "x:y": false, "a.b": false,
	} {
		dir := writeFiles(t, map[string]string{"f.yaml": "flags:\n  " + key + ":\n    state: ENABLED\n" +
			"    variants: {\"on\": true, \"off\": false}\n    defaultVariant: \"off\"\n" +
			"    metadata: {owner: o, description: d}\n"})
		code, out, _ := runCmd(t, dir, "lint", lintNow, "f.yaml")
		if got := code == 0 && !strings.Contains(out, "key-naming"); got != ok {
			t.Errorf("%q: code %d out %q, want passing=%v", key, code, out, ok)
		}
	}
}

// TestLintExamplesClean: the quickstart configuration and every flag file under
// examples/ lint clean with --max-warnings 0.
func TestLintExamplesClean(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var files, configs []string
	err = filepath.WalkDir(filepath.Join(root, "examples"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Ext(p) {
		case ".yaml", ".yml", ".json":
		default:
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch text := string(data); {
		case strings.Contains(text, "\nsources:"):
			configs = append(configs, rel)
		case strings.Contains(text, "flags:") || strings.Contains(text, `"flags"`):
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 || len(configs) == 0 {
		t.Fatalf("found flag files %v and configs %v under examples/, want some of each", files, configs)
	}
	for _, f := range files {
		if code, out, errOut := runCmd(t, root, "lint", lintNow, "--max-warnings=0", f); code != 0 {
			t.Errorf("lint %s: code %d\n%s%s", f, code, out, errOut)
		}
	}
	for _, c := range configs {
		if code, out, errOut := runCmd(t, root, "lint", lintNow, "--max-warnings=0", "--config", c); code != 0 {
			t.Errorf("lint --config %s: code %d\n%s%s", c, code, out, errOut)
		}
	}
}

// TestLintConfigFindingsPointAtOrigin: with --config, a finding names where the flag
// was defined — the flag file and line, or the store key and version — never the
// daemon configuration.
func TestLintConfigFindingsPointAtOrigin(t *testing.T) {
	c := testsvc.StartConsul(t)
	kv, err := api.NewClient(&api.Config{Address: c.Addr})
	if err != nil {
		t.Fatal(err)
	}
	// A definition in Consul without owner/description, and a bare value there too.
	if _, err := kv.KV().Put(&api.KVPair{Key: "flags/lint/payments/stored_def",
		Value: []byte(`{"state": "ENABLED", "variants": {"a": "a", "b": "b"}, "defaultVariant": "a", "targeting": {"if": [{"var": "x"}, "a", "a"]}}`)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.KV().Put(&api.KVPair{Key: "flags/lint/bare_switch", Value: []byte("true")}, nil); err != nil {
		t.Fatal(err)
	}
	pair, _, err := kv.KV().Get("flags/lint/payments/stored_def", nil)
	if err != nil || pair == nil {
		t.Fatalf("get: %v", err)
	}
	dir := writeFiles(t, map[string]string{
		"flagsync.yaml": "flagSetId: origins\nsources:\n" +
			"  - {name: git, type: file, path: defs}\n" +
			"  - {name: env, type: env, prefix: LINTORG_FLAG_}\n" +
			"  - {name: kv, type: consul, address: \"" + c.Addr + "\", prefix: flags/lint/}\n" +
			"outputs: {file: {path: out/flags.json}}\n",
	})
	if err := os.MkdirAll(filepath.Join(dir, "defs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "defs", "web.yaml"), []byte(`flags:
  fine_flag:
    state: ENABLED
    variants: {"on": true, "off": false}
    defaultVariant: "off"
    metadata: {owner: web, description: Fine}
  no_owner:
    state: ENABLED
    variants: {"on": true, "off": false}
    defaultVariant: "off"
    metadata:
      description: Nobody owns this
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// An overlay on the file flag: the finding still points at its definition.
	t.Setenv("LINTORG_FLAG_NO_OWNER", "true")
	code, out, errOut := runCmd(t, dir, "lint", lintNow, "--format=json", "--config", "flagsync.yaml")
	var fs []map[string]any
	if err := json.Unmarshal([]byte(out), &fs); err != nil || code != 0 {
		t.Fatalf("code %d, %v: %s%s", code, err, out, errOut)
	}
	got := map[string]string{}
	for _, f := range fs {
		line, _ := f["line"].(float64)
		got[f["rule"].(string)+" "+f["flag"].(string)] = fmt.Sprintf("%s:%d", f["file"], int(line))
	}
	want := map[string]string{
		"required-metadata no_owner":            "defs/web.yaml:11", // the metadata line in the file
		"required-metadata payments/stored_def": fmt.Sprintf("consul:flags/lint/payments/stored_def@%d:0", pair.ModifyIndex),
		"unused-variant payments/stored_def":    fmt.Sprintf("consul:flags/lint/payments/stored_def@%d:0", pair.ModifyIndex),
	}
	if !maps.Equal(got, want) {
		t.Errorf("findings at %v, want %v (bare_switch, a bare value, needs no metadata)", got, want)
	}
	// The text and GitHub formats name the same places.
	_, out, _ = runCmd(t, dir, "lint", lintNow, "--format=github", "--config", "flagsync.yaml")
	if !strings.Contains(out, "::warning file=defs/web.yaml,line=11,") || strings.Contains(out, "flagsync.yaml") {
		t.Errorf("github annotations do not point at the flag file:\n%s", out)
	}
}

// TestLintConfigReportsUnusableValues: a stored value the daemon cannot use (it does
// not parse, or does not fit the flag it overlays) is left out of the snapshot, so
// linting the snapshot alone would pass. lint --config reports each as an error
// naming the source and where the value is.
func TestLintConfigReportsUnusableValues(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"flags.yaml": `flags:
  checkout_color:
    state: ENABLED
    variants: {blue: "#00f", green: "#0f0"}
    defaultVariant: blue
    metadata: {owner: web, description: Colour}
`,
		"flagsync.yaml": "flagSetId: unusable\nsources:\n" +
			"  - {name: git, type: file, path: flags.yaml}\n" +
			"  - {name: env, type: env, prefix: LINTBAD_FLAG_}\n" +
			"outputs: {file: {path: out/flags.json}}\n",
	})
	t.Setenv("LINTBAD_FLAG_BROKEN", "{variants: [")   // does not parse
	t.Setenv("LINTBAD_FLAG_CHECKOUT_COLOR", "purple") // matches no variant
	code, out, errOut := runCmd(t, dir, "lint", lintNow, "--config", "flagsync.yaml")
	if code != 1 {
		t.Fatalf("code %d, want 1: %s%s", code, out, errOut)
	}
	for _, want := range []string{
		"error [invalid] broken: source env:",
		"env:LINTBAD_FLAG_BROKEN",
		"error [invalid] checkout_color: merge:",
		"env:LINTBAD_FLAG_CHECKOUT_COLOR",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "purple") {
		t.Errorf("a finding repeats the stored value:\n%s", out)
	}
}
