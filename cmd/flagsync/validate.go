package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/flagsync/flagsync/flagset"
)

func init() {
	register("validate", command{
		summary: "check flag files (JSON or YAML): validate FILE...",
		run:     runValidate,
	})
}

// readLimit caps how much of a flag file is read: one byte more than the largest
// document flagset accepts, so an oversized file gets flagset's own size error
// without the CLI holding the whole file in memory.
const readLimit = flagset.MaxDocumentSize + 1

// runValidate prints "FILE: ok, N flags" for each valid file and every problem of
// the others on stderr; the exit code is 1 when any file is invalid or unreadable.
func runValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cli := flag.NewFlagSet("validate", flag.ContinueOnError)
	cli.SetOutput(stderr)
	cli.Usage = func() {
		fmt.Fprintln(stderr, "usage: flagsync validate FILE...\n\n"+
			"Checks each flag file (JSON or YAML). Prints \"FILE: ok, N flags\" for a valid file;\n"+
			"otherwise every problem as \"FILE: path: message\" on stderr. Exit code 1 if any file\n"+
			"is invalid or unreadable.")
	}
	if code, ok := parseFlags(cli, args); !ok {
		return code
	}
	if cli.NArg() == 0 {
		cli.Usage()
		return 2
	}
	code := 0
	for _, path := range cli.Args() {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "flagsync validate: %v\n", ctx.Err())
			return 1
		}
		set, problems, err := loadFlagFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
			code = 1
			continue
		}
		if len(problems) > 0 {
			printProblems(stderr, path, problems)
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "%s: ok, %d flags\n", path, set.Len())
	}
	return code
}

// loadFlagFile reads and loads one flag file. The error covers unreadable and
// undecodable files; validation findings come back as problems alongside the Set
// of the valid flags.
func loadFlagFile(path string) (*flagset.Set, flagset.Problems, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, nil, err
	}
	set, problems, err := flagset.Load(data)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot parse: %w", err)
	}
	return set, problems, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", unwrapPath(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, readLimit))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", unwrapPath(err))
	}
	return data, nil
}

// unwrapPath drops the path from *fs.PathError: the caller already prints it.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// printProblems writes one "FILE: path: message" line per problem.
func printProblems(w io.Writer, file string, problems flagset.Problems) {
	for _, p := range problems {
		if p.Path == "" {
			fmt.Fprintf(w, "%s: %s\n", file, p.Message)
			continue
		}
		fmt.Fprintf(w, "%s: %s: %s\n", file, p.Path, p.Message)
	}
}
