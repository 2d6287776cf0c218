package sources

import (
	"fmt"
	"strings"

	"github.com/flagsync/flagsync/flagset"
)

// RelativeKey maps a store name under prefix to a flag key: the rest of the name, with
// nested levels kept as "/" (flags/prod/team/x under flags/prod/ → team/x), checked
// with the flagset key rule. On error the returned key is the best name to report the
// problem under.
func RelativeKey(prefix, name string) (string, error) {
	key, ok := strings.CutPrefix(name, prefix)
	if !ok || key == "" {
		return name, fmt.Errorf("%s is not a flag under %s", name, prefix)
	}
	if !flagset.ValidFlagKey(key) {
		return key, fmt.Errorf("%q cannot be a flag key (allowed: letters, digits, _ - . / :)", key)
	}
	return key, nil
}

// ValueProblem turns a ParseValue error ("flags.<key>[.field]: message") into a
// per-flag problem whose message also names where the value came from (origin).
// With redact, the message (which may quote the value) is replaced by redacted and
// only the field path is kept.
func ValueProblem(key string, origin Origin, err error, redact string) flagset.Problem {
	path, msg := "flags."+key, err.Error()
	if rest, ok := strings.CutPrefix(msg, path); ok {
		if i := strings.Index(rest, ": "); i >= 0 {
			path, msg = path+rest[:i], rest[i+2:]
		}
	}
	if redact != "" {
		msg = redact
	}
	return flagset.Problem{Flag: key, Path: path, Message: fmt.Sprintf("%s (%s)", msg, origin)}
}
