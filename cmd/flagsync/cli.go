package main

import (
	"errors"
	"flag"
)

// parseFlags parses args into a ContinueOnError flag set, which has already printed
// the error and usage when parsing fails. ok false means the command is done and
// exits with code: 0 after -h/--help, 2 on a bad flag.
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	err := fs.Parse(args)
	if err == nil {
		return 0, true
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0, false
	}
	return 2, false
}
