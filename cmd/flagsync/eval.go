package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/flagsync/flagsync/flagset"
)

func init() {
	register("eval", command{
		summary: "evaluate JSONL cases: eval --flags FILE --cases CASES.jsonl [--now UNIX]",
		run:     runEval,
	})
}

// evalTypes maps the case "type" names to flagset types.
var evalTypes = map[string]flagset.Type{
	"boolean": flagset.TypeBoolean,
	"string":  flagset.TypeString,
	"integer": flagset.TypeInteger,
	"float":   flagset.TypeFloat,
	"object":  flagset.TypeObject,
}

// evalCase is one input line. Other fields (a conformance case's name and
// expectations) are ignored so case files can be fed as they are.
type evalCase struct {
	Flag    json.RawMessage `json:"flag"`
	Type    json.RawMessage `json:"type"`
	Default json.RawMessage `json:"default"`
	Context json.RawMessage `json:"context"`
}

// runEval implements the language-neutral eval contract documented in
// conformance/README.md: one canonical JSON output line per non-blank input line.
func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cli := flag.NewFlagSet("eval", flag.ContinueOnError)
	cli.SetOutput(stderr)
	flagsPath := cli.String("flags", "", "flag file (JSON or YAML)")
	casesPath := cli.String("cases", "", "JSONL case file, - for stdin")
	now := cli.Int64("now", 0, "fixed $flagd.timestamp in unix seconds (default: the current time)")
	cli.Usage = func() {
		fmt.Fprintln(stderr, "usage: flagsync eval --flags FILE --cases CASES.jsonl [--now UNIX]\n\n"+
			"Evaluates each case line {\"flag\",\"type\",\"default\",\"context\"} and prints one line\n"+
			"{\"errorCode\",\"flag\",\"metadata\",\"reason\",\"value\",\"variant\"} per case (see conformance/README.md).")
		cli.PrintDefaults()
	}
	if code, ok := parseFlags(cli, args); !ok {
		return code
	}
	if *flagsPath == "" || *casesPath == "" || cli.NArg() > 0 {
		cli.Usage()
		return 2
	}
	nowSet := false
	cli.Visit(func(f *flag.Flag) { nowSet = nowSet || f.Name == "now" })
	if !nowSet {
		*now = time.Now().Unix()
	}

	set, problems, err := loadFlagFile(*flagsPath)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *flagsPath, err)
		return 1
	}
	// Flags with problems that Compile still keeps (e.g. bad targeting) are served as
	// compiled, which is how readers see them; the problems are informational here.
	printProblems(stderr, *flagsPath, problems)

	var in io.Reader = os.Stdin
	if *casesPath != "-" {
		f, err := os.Open(*casesPath)
		if err != nil {
			fmt.Fprintf(stderr, "%s: cannot read: %v\n", *casesPath, unwrapPath(err))
			return 1
		}
		defer f.Close()
		in = f
	}
	out := bufio.NewWriter(stdout)
	code, err := evalStream(ctx, set, *now, in, out, stderr, *casesPath)
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write output: %w", ferr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "flagsync eval: %v\n", err)
		return 1
	}
	return code
}

// evalStream evaluates every non-blank line of in and writes one result line each.
// It returns exit code 1 when any line was a bad case; err is an I/O failure.
func evalStream(ctx context.Context, set *flagset.Set, now int64, in io.Reader, out io.Writer, stderr io.Writer, name string) (int, error) {
	r := bufio.NewReader(in)
	code := 0
	for lineNo := 1; ; lineNo++ {
		if err := ctx.Err(); err != nil {
			return 1, err
		}
		line, rerr := r.ReadBytes('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return 1, fmt.Errorf("%s: read line %d: %w", name, lineNo, rerr)
		}
		if len(bytes.TrimSpace(line)) > 0 {
			res, err := safeEvalLine(set, now, line)
			if err != nil {
				fmt.Fprintf(stderr, "%s:%d: bad case: %v\n", name, lineNo, err)
				code = 1
			}
			b, err := flagset.CanonicalValue(res)
			if err != nil {
				// one output line per input line, always: the line says what failed
				fmt.Fprintf(stderr, "%s:%d: bad case: encode result: %v\n", name, lineNo, err)
				code = 1
				b, _ = flagset.CanonicalValue(generalLine(nil, nil))
			}
			if _, err := out.Write(append(b, '\n')); err != nil {
				return 1, fmt.Errorf("write output: %w", err)
			}
		}
		if rerr != nil {
			return code, nil
		}
	}
}

// generalLine is the output line of a bad case.
func generalLine(flag, value any) map[string]any {
	return map[string]any{
		"flag": flag, "value": value, "variant": nil, "reason": string(flagset.ReasonError),
		"errorCode": string(flagset.CodeGeneral), "metadata": map[string]any{},
	}
}

// safeEvalLine is evalLine, turning a panic into a bad case: one case never stops the run.
func safeEvalLine(set *flagset.Set, now int64, line []byte) (out map[string]any, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = generalLine(nil, nil), fmt.Errorf("internal error: %v", p)
		}
	}()
	return evalLine(set, now, line)
}

// evalLine evaluates one case line. For a bad case it returns the ERROR/GENERAL
// output line (with whatever flag and default could be read) and the reason.
func evalLine(set *flagset.Set, now int64, line []byte) (map[string]any, error) {
	out := generalLine(nil, nil)
	var c evalCase
	if err := flagset.CheckJSONDepth(line); err != nil {
		return out, fmt.Errorf("invalid JSON object: %w", err)
	}
	if err := json.Unmarshal(line, &c); err != nil {
		return out, fmt.Errorf("invalid JSON object: %w", err)
	}
	var def any
	var defErr error
	if c.Default != nil {
		// The line is valid JSON, so this fails only for numbers beyond the double range.
		if defErr = json.Unmarshal(c.Default, &def); defErr == nil {
			out["value"] = def
		}
	}
	key, ok := jsonString(c.Flag)
	if !ok {
		return out, errors.New(`"flag" must be a string`)
	}
	out["flag"] = key
	if c.Type == nil {
		return out, errors.New(`"type" is required`)
	}
	typeName, _ := jsonString(c.Type)
	typ, ok := evalTypes[typeName]
	if !ok {
		return out, fmt.Errorf(`"type" %s is not one of boolean, string, integer, float, object`, bytes.TrimSpace(c.Type))
	}
	if c.Default == nil {
		return out, errors.New(`"default" is required`)
	}
	if defErr != nil {
		return out, fmt.Errorf(`"default" %s: not representable as a double`, c.Default)
	}
	def, err := typedDefault(typ, def)
	if err != nil {
		return out, fmt.Errorf(`"default" %s: %w`, c.Default, err)
	}
	attrs := map[string]any{}
	if c.Context != nil && !bytes.Equal(c.Context, []byte("null")) {
		if c.Context[0] != '{' {
			return out, errors.New(`"context" must be a JSON object`)
		}
		if err := json.Unmarshal(c.Context, &attrs); err != nil {
			return out, fmt.Errorf(`"context": %w`, err)
		}
	}

	res := set.EvaluateAt(key, typ, def, attrs, now)
	out["value"] = res.Value
	out["reason"] = string(res.Reason)
	if res.HasVariant {
		out["variant"] = res.Variant
	}
	if res.ErrorCode != flagset.CodeNone {
		out["errorCode"] = string(res.ErrorCode)
	} else {
		out["errorCode"] = nil
	}
	if res.Metadata != nil {
		out["metadata"] = res.Metadata
	}
	return out, nil
}

// jsonString decodes raw as a JSON string; absent, null and non-strings are not ok.
func jsonString(raw json.RawMessage) (string, bool) {
	var s *string
	if err := json.Unmarshal(raw, &s); err != nil || s == nil {
		return "", false
	}
	return *s, true
}

// typedDefault checks the caller's default against the requested type and converts
// it to the Go type flagset returns for that type (int64 for integers).
func typedDefault(typ flagset.Type, v any) (any, error) {
	switch typ {
	case flagset.TypeBoolean:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, errors.New("is not a boolean")
	case flagset.TypeString:
		if s, ok := v.(string); ok {
			return s, nil
		}
		return nil, errors.New("is not a string")
	case flagset.TypeInteger:
		f, ok := v.(float64)
		// 2^53 keeps every accepted default exactly representable in both Go and Python.
		if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return nil, errors.New("is not an integer (integral number, |n| <= 2^53)")
		}
		return int64(f), nil
	case flagset.TypeFloat:
		if f, ok := v.(float64); ok {
			return f, nil
		}
		return nil, errors.New("is not a number")
	case flagset.TypeObject:
		if m, ok := v.(map[string]any); ok {
			return m, nil
		}
		return nil, errors.New("is not a JSON object")
	}
	return nil, fmt.Errorf("unsupported type %d", typ)
}
