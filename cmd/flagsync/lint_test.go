package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCmd(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if dir != "" {
		t.Chdir(dir)
	}
	var out, errb bytes.Buffer
	code = dispatch(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const lintClean = `flags:
  new_checkout:
    state: ENABLED
    variants: {"on": true, "off": false}
    defaultVariant: "off"
    targeting: {fractional: [["on", 10], ["off", 90]]}
    metadata: {owner: payments, description: New checkout, expiresAt: "2026-08-01T00:00:00Z"}
`

const lintWarn = `flags:
  BetaMode:
    state: ENABLED
    variants: {"on": true, "off": false}
    defaultVariant: "off"
    targeting: {if: [{var: beta}, "on", "off"]}
    metadata: {owner: core, description: Beta, expiresAt: "2026-08-01T00:00:00Z"}
`

const lintError = `{
  "flags": {
    "new_checkout": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "targeting": {"if": [{"var": "beta"}, "yes", "off"]},
      "metadata": {"owner": "payments", "description": "dup", "expiresAt": "2026-08-01T00:00:00Z"}
    }
  }
}
`

func TestLintCommand(t *testing.T) {
	dir := writeFiles(t, map[string]string{"clean.yaml": lintClean, "warn.yaml": lintWarn, "error.json": lintError,
		"warn-naming.yaml": "severity: {key-naming: warning}\n"})
	now := "--now=2026-06-15T00:00:00Z"

	if code, out, errOut := runCmd(t, dir, "lint", now, "clean.yaml"); code != 0 || out != "" || !strings.Contains(errOut, "0 error(s), 0 warning(s)") {
		t.Errorf("clean: code %d out %q err %q", code, out, errOut)
	}
	code, out, _ := runCmd(t, dir, "lint", now, "warn.yaml")
	if code != 1 || !strings.Contains(out, "warn.yaml:2: error [key-naming] BetaMode") {
		t.Errorf("key-naming is an error by default: code %d out %q", code, out)
	}
	if code, out, _ := runCmd(t, dir, "lint", now, "--lint-config=warn-naming.yaml", "warn.yaml"); code != 0 || !strings.Contains(out, "warning [key-naming]") {
		t.Errorf("key-naming graded down to a warning: code %d out %q", code, out)
	}
	if code, _, _ := runCmd(t, dir, "lint", now, "--lint-config=warn-naming.yaml", "--max-warnings=0", "warn.yaml"); code != 1 {
		t.Errorf("--max-warnings=0 with a warning: code %d, want 1", code)
	}
	if code, out, _ := runCmd(t, dir, "lint", now, "--disable=key-naming", "--max-warnings=0", "warn.yaml"); code != 0 || out != "" {
		t.Errorf("--disable: code %d out %q", code, out)
	}

	code, out, _ = runCmd(t, dir, "lint", now, "--format=github", "clean.yaml", "error.json")
	if code != 1 {
		t.Errorf("errors: code %d, want 1", code)
	}
	for _, want := range []string{
		"::error file=error.json,line=7,title=flagsync lint%3A targeting-unknown-variant::new_checkout: targeting returns \"yes\"",
		"::error file=error.json,line=3,title=flagsync lint%3A duplicate-key::new_checkout: flag \"new_checkout\" is also defined in clean.yaml",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("github output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = runCmd(t, dir, "lint", now, "--format=json", "warn.yaml")
	var fs []map[string]any
	if err := json.Unmarshal([]byte(out), &fs); err != nil || code != 1 || len(fs) != 1 || fs[0]["rule"] != "key-naming" || fs[0]["line"] != 2.0 {
		t.Errorf("json: code %d %v %q", code, err, out)
	}

	// .flagsync-lint.yaml in the working directory is picked up; --enable overrides it.
	os.WriteFile(filepath.Join(dir, ".flagsync-lint.yaml"), []byte("disable: [key-naming]\n"), 0o644)
	if code, out, _ := runCmd(t, dir, "lint", now, "--max-warnings=0", "warn.yaml"); code != 0 || out != "" {
		t.Errorf("config file ignored: code %d out %q", code, out)
	}
	if code, _, _ := runCmd(t, dir, "lint", now, "--enable=key-naming", "--max-warnings=0", "warn.yaml"); code != 1 {
		t.Errorf("--enable did not override the config file: code %d", code)
	}
}

func TestLintCommandUsageErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{"clean.yaml": lintClean, "bad-config.yaml": "disable: [nope]\n"})
	for _, args := range [][]string{
		{"lint"},
		{"lint", "--format=xml", "clean.yaml"},
		{"lint", "missing.yaml"},
		{"lint", "--disable=nope", "clean.yaml"},
		{"lint", "--lint-config=bad-config.yaml", "clean.yaml"},
		{"lint", "--lint-config=absent.yaml", "clean.yaml"},
		{"lint", "--now=yesterday", "clean.yaml"},
	} {
		if code, _, errOut := runCmd(t, dir, args...); code != 2 || errOut == "" {
			t.Errorf("%v: code %d (want 2), stderr %q", args, code, errOut)
		}
	}
	if code, out, _ := runCmd(t, dir, "lint", "--list-rules"); code != 0 || !strings.Contains(out, "fractional-weights") {
		t.Errorf("--list-rules: %d %q", code, out)
	}
}
