package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const evalFlags = `{"metadata":{"flagSetId":"t"},"flags":{
  "beta":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off",
          "targeting":{"if":[{"ends_with":[{"var":"user.email"},"@example.com"]},"on",null]},
          "metadata":{"owner":"ann"}},
  "limit":{"state":"ENABLED","variants":{"three":3.0,"half":3.5},"defaultVariant":"three"},
  "launch":{"state":"ENABLED","variants":{"live":"live","soon":"soon"},"defaultVariant":"soon",
            "targeting":{"if":[{">=":[{"var":"$flagd.timestamp"},1767225600]},"live","soon"]}},
  "cfg":{"state":"ENABLED","variants":{"v":{"z":1,"a":"é\u2028"}},"defaultVariant":"v"},
  "off":{"state":"DISABLED","variants":{"a":"a"},"defaultVariant":"a"}}}`

const evalCases = `{"flag": "beta", "type": "boolean", "default": false, "context": {"user": {"email": "x@example.com"}}}
{"flag": "beta", "type": "boolean", "default": false, "context": {"targetingKey": "u1"}}

{"flag": "limit", "type": "integer", "default": 0}
{"flag": "limit", "type": "float", "default": 0, "context": null}
{"flag": "beta", "type": "string", "default": "s", "context": {}}
{"flag": "cfg", "type": "object", "default": {}, "name": "extra fields are ignored"}
{"flag": "off", "type": "string", "default": "d"}
{"flag": "ghost", "type": "integer", "default": 7}
{"flag": "launch", "type": "string", "default": ""}
`

var evalWant = []string{
	`{"errorCode":null,"flag":"beta","metadata":{"flagSetId":"t","owner":"ann"},"reason":"TARGETING_MATCH","value":true,"variant":"on"}`,
	`{"errorCode":null,"flag":"beta","metadata":{"flagSetId":"t","owner":"ann"},"reason":"DEFAULT","value":false,"variant":"off"}`,
	`{"errorCode":null,"flag":"limit","metadata":{"flagSetId":"t"},"reason":"STATIC","value":3,"variant":"three"}`,
	`{"errorCode":null,"flag":"limit","metadata":{"flagSetId":"t"},"reason":"STATIC","value":3,"variant":"three"}`,
	`{"errorCode":"TYPE_MISMATCH","flag":"beta","metadata":{"flagSetId":"t","owner":"ann"},"reason":"ERROR","value":"s","variant":null}`,
	"{\"errorCode\":null,\"flag\":\"cfg\",\"metadata\":{\"flagSetId\":\"t\"},\"reason\":\"STATIC\",\"value\":{\"a\":\"é\u2028\",\"z\":1},\"variant\":\"v\"}",
	`{"errorCode":null,"flag":"off","metadata":{"flagSetId":"t"},"reason":"DISABLED","value":"d","variant":null}`,
	`{"errorCode":"FLAG_NOT_FOUND","flag":"ghost","metadata":{"flagSetId":"t"},"reason":"ERROR","value":7,"variant":null}`,
	`{"errorCode":null,"flag":"launch","metadata":{"flagSetId":"t"},"reason":"TARGETING_MATCH","value":"live","variant":"live"}`,
}

func compareLines(t *testing.T, got string, want []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d output lines, want %d:\n%s", len(lines), len(want), got)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got  %s\n want %s", i+1, lines[i], want[i])
		}
	}
}

func TestEvalCases(t *testing.T) {
	flags := cliFile(t, "flags.json", evalFlags)
	cases := cliFile(t, "cases.jsonl", evalCases)
	code, stdout, stderr := cliRun(t, "eval", "--flags", flags, "--cases", cases, "--now", "1767225600")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	compareLines(t, stdout, evalWant)
}

func TestEvalNow(t *testing.T) {
	flags := cliFile(t, "flags.json", evalFlags)
	cases := cliFile(t, "cases.jsonl", `{"flag": "launch", "type": "string", "default": ""}`)
	_, stdout, _ := cliRun(t, "eval", "--flags", flags, "--cases", cases, "--now", "1767225599")
	if !strings.Contains(stdout, `"value":"soon"`) {
		t.Errorf("--now before the launch: %s", stdout)
	}
	// Without --now the current time is used, which is after 2026-01-01.
	_, stdout, _ = cliRun(t, "eval", "--flags", flags, "--cases", cases)
	if !strings.Contains(stdout, `"value":"live"`) {
		t.Errorf("default now: %s", stdout)
	}
}

func TestEvalBadCaseLines(t *testing.T) {
	flags := cliFile(t, "flags.json", evalFlags)
	cases := cliFile(t, "cases.jsonl", strings.Join([]string{
		`{"flag": "beta", "type": "boolean", "default": true`,
		`{"flag": "beta", "type": "bool", "default": true}`,
		`{"flag": "beta", "type": "boolean"}`,
		`{"flag": "limit", "type": "integer", "default": 1.5}`,
		`{"flag": "beta", "type": "boolean", "default": true, "context": [1]}`,
		`{"flag": 5, "type": "boolean", "default": true}`,
		`["not", "an", "object"]`,
		`{"flag": "limit", "type": "float", "default": 1e400}`,
		`{"flag": "beta", "type": "boolean", "default": true, "context": {"n": -1e400}}`,
		`{"flag": "ghost", "type": "integer", "default": 9007199254740993}`,
		`{"flag": "limit", "type": "integer", "default": 2}`,
	}, "\n"))
	code, stdout, stderr := cliRun(t, "eval", "--flags", flags, "--cases", cases, "--now", "0")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	bad := func(flag, value string) string {
		return `{"errorCode":"GENERAL","flag":` + flag + `,"metadata":{},"reason":"ERROR","value":` + value + `,"variant":null}`
	}
	compareLines(t, stdout, []string{
		bad("null", "null"),
		bad(`"beta"`, "true"),
		bad(`"beta"`, "null"),
		bad(`"limit"`, "1.5"),
		bad(`"beta"`, "true"),
		bad("null", "true"),
		bad("null", "null"),
		bad(`"limit"`, "null"),
		bad(`"beta"`, "true"),
		// JSON numbers are doubles: 2^53+1 reads as 2^53, an allowed integer default.
		`{"errorCode":"FLAG_NOT_FOUND","flag":"ghost","metadata":{"flagSetId":"t"},"reason":"ERROR","value":9007199254740992,"variant":null}`,
		`{"errorCode":null,"flag":"limit","metadata":{"flagSetId":"t"},"reason":"STATIC","value":3,"variant":"three"}`,
	})
	for i := 1; i <= 9; i++ {
		if want := fmt.Sprintf("%s:%d: bad case: ", cases, i); !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	for _, good := range []string{":10:", ":11:"} {
		if strings.Contains(stderr, cases+good) {
			t.Errorf("good line %s reported as bad:\n%s", good, stderr)
		}
	}
}

func TestEvalProblemsAreWarnings(t *testing.T) {
	flags := cliFile(t, "flags.json", `{"flags":{"x":{"state":"ENABLED","variants":{"a":true},"defaultVariant":"a","targeting":{"nope":[1]}},
	  "y":{"state":"ENABLED","variants":{},"defaultVariant":"a"}}}`)
	cases := cliFile(t, "cases.jsonl", `{"flag": "x", "type": "boolean", "default": false}
{"flag": "y", "type": "boolean", "default": false}`)
	code, stdout, stderr := cliRun(t, "eval", "--flags", flags, "--cases", cases, "--now", "0")
	if code != 0 {
		t.Errorf("exit %d, want 0 (problems are warnings)", code)
	}
	if !strings.Contains(stderr, flags+": flags.x.targeting: ") || !strings.Contains(stderr, flags+": flags.y.variants: ") {
		t.Errorf("problems not reported:\n%s", stderr)
	}
	compareLines(t, stdout, []string{
		`{"errorCode":"PARSE_ERROR","flag":"x","metadata":{},"reason":"ERROR","value":false,"variant":null}`,
		`{"errorCode":"FLAG_NOT_FOUND","flag":"y","metadata":{},"reason":"ERROR","value":false,"variant":null}`,
	})
}

func TestEvalUsageAndFileErrors(t *testing.T) {
	flags := cliFile(t, "flags.json", evalFlags)
	cases := cliFile(t, "cases.jsonl", `{"flag": "beta", "type": "boolean", "default": false}`)
	missing := filepath.Join(t.TempDir(), "missing")
	garbage := cliFile(t, "garbage.json", "{oops")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"eval", "--cases", cases}, 2, "usage: flagsync eval"},
		{[]string{"eval", "--flags", flags}, 2, "usage: flagsync eval"},
		{[]string{"eval", "--flags", flags, "--cases", cases, "extra"}, 2, "usage: flagsync eval"},
		{[]string{"eval", "--flags", flags, "--cases", cases, "--now", "soon"}, 2, "invalid value"},
		{[]string{"eval", "--flags", missing, "--cases", cases}, 1, missing + ": cannot read: no such file or directory"},
		{[]string{"eval", "--flags", garbage, "--cases", cases}, 1, garbage + ": cannot parse: "},
		{[]string{"eval", "--flags", flags, "--cases", missing}, 1, missing + ": cannot read: no such file or directory"},
	} {
		code, stdout, stderr := cliRun(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) || stdout != "" {
			t.Errorf("%v: exit %d stdout %q stderr %q; want exit %d and %q", tc.args, code, stdout, stderr, tc.code, tc.msg)
		}
	}
}

// TestBinary runs the built flagsync binary: exit codes and stdin cases as a user sees them.
func TestBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "flagsync")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	flags := cliFile(t, "flags.json", evalFlags)
	bad := cliFile(t, "bad.json", invalidJSON)

	run := func(stdin string, args ...string) (int, string, string) {
		cmd := exec.Command(bin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String(), errOut.String()
	}

	if code, stdout, _ := run("", "validate", flags); code != 0 || stdout != flags+": ok, 5 flags\n" {
		t.Errorf("validate good: exit %d stdout %q", code, stdout)
	}
	if code, _, stderr := run("", "validate", bad); code != 1 || !strings.Contains(stderr, "flags.new_dashboard.defaultVariant") {
		t.Errorf("validate bad: exit %d stderr %q", code, stderr)
	}
	code, stdout, stderr := run(evalCases, "eval", "--flags", flags, "--cases", "-", "--now", "1767225600")
	if code != 0 || stderr != "" {
		t.Fatalf("eval from stdin: exit %d stderr %q", code, stderr)
	}
	compareLines(t, stdout, evalWant)
	if code, _, _ := run("", "eval", "--flags", flags, "--cases", "-"); code != 0 {
		t.Errorf("empty stdin: exit %d", code)
	}
	if code, _, _ := run("not json\n", "eval", "--flags", flags, "--cases", "-"); code != 1 {
		t.Errorf("bad stdin line: exit %d, want 1", code)
	}
	if code, _, _ := run("", "nonsense"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}
