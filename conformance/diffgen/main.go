// Command diffgen is the seeded differential test of the Go and Python readers: it
// generates random flag documents (JSON and YAML renderings, every operator, every
// variant type, edge numbers and strings, deep nesting, long $ref chains) and case
// lines, runs them through `flagsync eval` and `python -m flagsync eval`, and
// reports every case whose output lines (or exit codes) differ.
//
//	go run ./conformance/diffgen -go bin/flagsync -python .venv/bin/python -seed 1 -docs 100
//
// The same seed always generates the same inputs, so a reported difference is
// reproduced by running the same command again; -keep DIR keeps the files.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

const now = "1767225600"

type options struct {
	goBin, python, keep string
	seed                uint64
	docs, cases, jobs   int
	maxReport           int
	duration            time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.goBin, "go", "bin/flagsync", "the flagsync binary")
	flag.StringVar(&o.python, "python", ".venv/bin/python", "the Python interpreter with flagsync installed")
	flag.StringVar(&o.keep, "keep", "", "write the generated files into this directory and keep them")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the first document (document i uses seed+i)")
	flag.IntVar(&o.docs, "docs", 100, "documents to generate")
	flag.IntVar(&o.cases, "cases", 30, "case lines per document")
	flag.IntVar(&o.jobs, "jobs", 2, "documents run at the same time")
	flag.IntVar(&o.maxReport, "report", 20, "differences to print in full")
	flag.DurationVar(&o.duration, "duration", 0, "keep generating documents until this much time has passed (overrides -docs)")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "diffgen:", err)
		os.Exit(1)
	}
}

// outcome is one document's comparison.
type outcome struct {
	seed        uint64
	cases       int
	unloadable  bool // neither reader loaded the document (both said so)
	differences []string
	err         error
}

func run(ctx context.Context, o options) error {
	dir := o.keep
	if dir == "" {
		d, err := os.MkdirTemp("", "flagsync-diffgen-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	start := time.Now()
	seeds := make(chan uint64)
	results := make(chan outcome)
	var wg sync.WaitGroup
	for w := 0; w < o.jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range seeds {
				results <- compareDocument(ctx, o, dir, s)
			}
		}()
	}
	go func() {
		for i := uint64(0); ; i++ {
			if o.duration > 0 && time.Since(start) > o.duration || o.duration == 0 && i >= uint64(o.docs) {
				break
			}
			seeds <- o.seed + i
		}
		close(seeds)
		wg.Wait()
		close(results)
	}()
	docs, cases, diffs, unloadable := 0, 0, 0, 0
	var failed error
	for r := range results {
		docs++
		cases += r.cases
		if r.unloadable {
			unloadable++
		}
		if r.err != nil && failed == nil {
			failed = fmt.Errorf("seed %d: %w", r.seed, r.err)
		}
		for _, d := range r.differences {
			if diffs < o.maxReport {
				fmt.Printf("--- difference (seed %d)\n%s\n", r.seed, d)
			}
			diffs++
		}
	}
	fmt.Printf("diffgen: %d documents (%d rejected by both readers), %d cases (seeds %d..%d), %d differences, %s\n",
		docs, unloadable, cases, o.seed, o.seed+uint64(docs)-1, diffs, time.Since(start).Round(time.Second))
	if failed != nil {
		return failed
	}
	if diffs > 0 {
		return fmt.Errorf("%d differences between the Go and the Python reader", diffs)
	}
	return nil
}

// compareDocument generates the document of one seed with its cases and compares
// both CLIs on it.
func compareDocument(ctx context.Context, o options, dir string, seed uint64) outcome {
	g := &gen{r: rand.New(rand.NewPCG(seed, 0x5eed)), yaml: seed%3 == 0}
	doc, keys := g.document()
	var text strings.Builder
	ext := "json"
	if g.yaml {
		ext = "yaml"
		if g.chance(0.1) {
			text.WriteString(oneOf(g, "%YAML 1.2\n---", "---", "# flags\n", "\ufeff"))
		}
		for _, m := range doc { // the top level in block style: a leading '{' would mean JSON
			text.WriteString("\n")
			g.yamlKey(&text, m.key, false)
			text.WriteString(": ")
			g.writeYAML(&text, m.val, 2, false)
		}
		text.WriteString("\n")
	} else {
		g.writeJSON(&text, doc)
	}
	var lines strings.Builder
	for i := 0; i < o.cases; i++ {
		g.writeJSON(&lines, g.caseLine(keys))
		lines.WriteByte('\n')
	}
	flagsPath := filepath.Join(dir, fmt.Sprintf("doc-%d.%s", seed, ext))
	casesPath := filepath.Join(dir, fmt.Sprintf("doc-%d.jsonl", seed))
	out := outcome{seed: seed, cases: o.cases}
	if err := os.WriteFile(flagsPath, []byte(text.String()), 0o644); err != nil {
		out.err = err
		return out
	}
	if err := os.WriteFile(casesPath, []byte(lines.String()), 0o644); err != nil {
		out.err = err
		return out
	}
	args := []string{"eval", "--flags", flagsPath, "--cases", casesPath, "--now", now}
	goOut, goCode, err := runCLI(ctx, o.goBin, args...)
	if err != nil {
		out.err = err
		return out
	}
	pyOut, pyCode, err := runCLI(ctx, o.python, append([]string{"-m", "flagsync"}, args...)...)
	if err != nil {
		out.err = err
		return out
	}
	if goCode != pyCode || (goCode > 1 || pyCode > 1) {
		out.differences = append(out.differences, fmt.Sprintf("flags %s cases %s: exit code go %d, python %d\n%s",
			flagsPath, casesPath, goCode, pyCode, clip(goOut.stderr+"\n"+pyOut.stderr)))
	}
	out.unloadable = goCode == 1 && pyCode == 1 && goOut.stdout == "" && pyOut.stdout == ""
	if gp, pp := problemLines(goOut.stderr, flagsPath), problemLines(pyOut.stderr, flagsPath); !out.unloadable && gp != pp {
		out.differences = append(out.differences, fmt.Sprintf("flags %s: the validation problems differ\n  go  %s\n  py  %s",
			flagsPath, clip(gp), clip(pp)))
	}
	goLines, pyLines := strings.Split(goOut.stdout, "\n"), strings.Split(pyOut.stdout, "\n")
	inLines := strings.Split(lines.String(), "\n")
	for i := 0; i < max(len(goLines), len(pyLines)); i++ {
		gl, pl := at(goLines, i), at(pyLines, i)
		if gl != pl {
			out.differences = append(out.differences, fmt.Sprintf("flags %s, case line %d:\n  in  %s\n  go  %s\n  py  %s",
				flagsPath, i+1, clip(at(inLines, i)), clip(gl), clip(pl)))
		}
	}
	if len(out.differences) > 0 && o.keep == "" {
		// keep the inputs of a difference next to the report
		keep := filepath.Join(os.TempDir(), "flagsync-diffgen-failures")
		_ = os.MkdirAll(keep, 0o755)
		for _, p := range []string{flagsPath, casesPath} {
			if b, err := os.ReadFile(p); err == nil {
				_ = os.WriteFile(filepath.Join(keep, filepath.Base(p)), b, 0o644)
			}
		}
	}
	return out
}

// problemLines are the validation problems a CLI printed for the flag file (the
// messages of bad case lines and of unparsable files may differ in wording).
func problemLines(stderr, flagsPath string) string {
	var keep []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, flagsPath+": ") && !strings.HasPrefix(l, flagsPath+": cannot ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

type cliOutput struct{ stdout, stderr string }

// runCLI runs one CLI; exit codes 0 and 1 are results, anything else an error.
func runCLI(ctx context.Context, bin string, args ...string) (cliOutput, int, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		return cliOutput{}, 0, fmt.Errorf("%s: %w", bin, err)
	}
	return cliOutput{stdout.String(), stderr.String()}, code, nil
}

func at(xs []string, i int) string {
	if i < len(xs) {
		return xs[i]
	}
	return "<no line>"
}

func clip(s string) string {
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return s
}
