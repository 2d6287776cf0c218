package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cliRun runs one subcommand in-process through dispatch.
func cliRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = dispatch(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// cliFile writes a test input file and returns its path.
func cliFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const validJSON = `{"flags":{
  "new_dashboard":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off"},
  "color":{"state":"DISABLED","variants":{"red":"#f00"},"defaultVariant":"red"}}}`

const validYAML = `flags:
  new_dashboard:
    state: ENABLED
    variants: {"on": true, "off": false}
    defaultVariant: "off"
`

const invalidJSON = `{"flags":{
  "new_dashboard":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"onn"},
  "broken":{"state":"MAYBE","variants":{"a":1}},
  "fine":{"state":"ENABLED","variants":{"a":1},"defaultVariant":"a"}}}`

func TestValidateValidFiles(t *testing.T) {
	j := cliFile(t, "flags.json", validJSON)
	y := cliFile(t, "flags.yaml", validYAML)
	code, stdout, stderr := cliRun(t, "validate", j, y)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	want := j + ": ok, 2 flags\n" + y + ": ok, 1 flags\n"
	if stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	bad := cliFile(t, "bad.json", invalidJSON)
	good := cliFile(t, "good.json", validJSON)
	code, stdout, stderr := cliRun(t, "validate", bad, good)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	wantLine := bad + `: flags.new_dashboard.defaultVariant: "onn" is not a variant (have: off, on)`
	if !strings.Contains(stderr, wantLine+"\n") {
		t.Errorf("stderr lacks %q:\n%s", wantLine, stderr)
	}
	if !strings.Contains(stderr, bad+": flags.broken.state: ") {
		t.Errorf("stderr lacks the state problem of flag broken:\n%s", stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !strings.HasPrefix(line, bad+": flags.") {
			t.Errorf("problem line %q is not \"FILE: flags.<key>...\"", line)
		}
	}
	if stdout != good+": ok, 2 flags\n" {
		t.Errorf("stdout %q: the valid file must still be reported ok", stdout)
	}
}

func TestValidateUnreadableAndUndecodable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.json")
	garbage := cliFile(t, "garbage.json", `{"flags": {`)
	code, stdout, stderr := cliRun(t, "validate", missing, garbage)
	if code != 1 || stdout != "" {
		t.Errorf("exit %d stdout %q, want 1 and nothing", code, stdout)
	}
	if !strings.Contains(stderr, missing+": cannot read: no such file or directory\n") {
		t.Errorf("stderr lacks the read error:\n%s", stderr)
	}
	if !strings.Contains(stderr, garbage+": cannot parse: ") {
		t.Errorf("stderr lacks the parse error:\n%s", stderr)
	}
}

func TestValidateUsage(t *testing.T) {
	if code, _, stderr := cliRun(t, "validate"); code != 2 || !strings.Contains(stderr, "usage: flagsync validate") {
		t.Errorf("no args: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := cliRun(t, "validate", "-h"); code != 0 {
		t.Errorf("-h: exit %d", code)
	}
	if code, _, _ := cliRun(t, "validate", "--bogus", "x"); code != 2 {
		t.Errorf("unknown flag: exit %d", code)
	}
}
