package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/flagsync/flagsync/daemon"
	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/lint"
)

func init() {
	register("lint", command{
		summary: "check flag files against the lint rules: lint [--format text|json|github] FILE...",
		run:     runLint,
	})
}

// defaultLintConfig is read from the working directory when --lint-config is not given.
const defaultLintConfig = ".flagsync-lint.yaml"

func runLint(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cli := flag.NewFlagSet("lint", flag.ContinueOnError)
	cli.SetOutput(stderr)
	format := cli.String("format", lint.FormatText, "output `format`: text, json or github (workflow annotations)")
	disable := cli.String("disable", "", "comma-separated rule `ids` to switch off")
	enable := cli.String("enable", "", "comma-separated rule `ids` to switch on (overrides the config file)")
	cfgFile := cli.String("lint-config", "", "lint configuration `file` (default ./"+defaultLintConfig+" when present)")
	maxWarnings := cli.Int("max-warnings", -1, "exit 1 when there are more than `n` warnings (-1: no limit)")
	nowFlag := cli.String("now", "", "check expiries at this RFC 3339 `time` instead of now")
	cfgPath := cli.String("config", "", "lint the merged live sources of this daemon `config` (in addition to FILEs)")
	listRules := cli.Bool("list-rules", false, "print the rules and exit")
	cli.Usage = func() {
		fmt.Fprintln(stderr, "usage: flagsync lint [flags] FILE...\n\n"+
			"Checks flag files (JSON or YAML) against naming, metadata, expiry, variant, targeting\n"+
			"and duplicate-key rules (see docs/LIFECYCLE.md). Files are compared in order, like\n"+
			"sources: a key defined in two files is a duplicate-key finding.\n"+
			"Exit code 0 clean, 1 errors (or more warnings than --max-warnings), 2 usage or I/O error.\n\nflags:")
		cli.PrintDefaults()
	}
	if code, ok := parseFlags(cli, args); !ok {
		return code
	}
	if *listRules {
		for _, r := range lint.Rules() {
			fmt.Fprintf(stdout, "%-26s %-8s %s\n", r.ID, r.Severity, r.Description)
		}
		return 0
	}
	if cli.NArg() == 0 && *cfgPath == "" {
		cli.Usage()
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "flagsync lint: "+format+"\n", a...)
		return 2
	}
	switch *format {
	case lint.FormatText, lint.FormatJSON, lint.FormatGitHub:
	default:
		return fail("--format: %q (want text, json or github)", *format)
	}
	var cfg lint.Config
	path, explicit := *cfgFile, *cfgFile != ""
	if !explicit {
		path = defaultLintConfig
	}
	if data, err := os.ReadFile(path); err == nil {
		if cfg, err = lint.ParseConfig(data); err != nil {
			return fail("%s: %v", path, err)
		}
	} else if explicit || !errors.Is(err, os.ErrNotExist) {
		return fail("%s: %v", path, unwrapPath(err))
	}
	cfg.Disable = append(cfg.Disable, splitIDs(*disable)...)
	cfg.Enable = append(cfg.Enable, splitIDs(*enable)...)
	now, err := parseNow(*nowFlag)
	if err != nil {
		return fail("--now: %v", err)
	}
	var inputs []lint.Input
	if *cfgPath != "" {
		in, err := readFlagsInput(ctx, *cfgPath, nil, stderr)
		if err != nil {
			return fail("%s: %v", in.name, err)
		}
		inputs = append(inputs, lint.Input{Path: in.name, Data: in.data, Provenance: in.provenance, Unusable: unusableProblems(in.unusable)})
	}
	for _, p := range cli.Args() {
		data, err := readFile(p)
		if err != nil {
			return fail("%s: %v", p, err)
		}
		inputs = append(inputs, lint.Input{Path: p, Data: data})
	}
	findings, err := lint.Lint(inputs, cfg, now)
	if err != nil {
		return fail("%v", err)
	}
	if err := lint.Write(stdout, *format, findings); err != nil {
		return fail("%v", err)
	}
	errs, warns := lint.Count(findings)
	if *format == lint.FormatText {
		fmt.Fprintf(stderr, "%d file(s): %d error(s), %d warning(s)\n", len(inputs), errs, warns)
	}
	if errs > 0 || (*maxWarnings >= 0 && warns > *maxWarnings) {
		return 1
	}
	return 0
}

// unusableProblems turns the daemon's problems with values it left out into lint
// problems whose message says which part refused the value: "source kv: ..." (it did
// not parse), "merge: ..." (it did not fit), "validate: ..." (it made the flag invalid).
// The daemon's messages already name the value's origin and never repeat the value.
func unusableProblems(errs []daemon.FlagError) []flagset.Problem {
	out := make([]flagset.Problem, 0, len(errs))
	for _, fe := range errs {
		by := fe.Source
		if by != "merge" && by != "validate" {
			by = "source " + by
		}
		out = append(out, flagset.Problem{Flag: fe.Flag, Path: fe.Path, Message: by + ": " + fe.Message})
	}
	return out
}

func splitIDs(s string) []string {
	var out []string
	for _, id := range strings.Split(s, ",") {
		if id = strings.TrimSpace(id); id != "" {
			out = append(out, id)
		}
	}
	return out
}
