package daemon

import (
	"strings"

	"github.com/flagsync/flagsync/flagset"
)

// secretFlags is the set of flag keys whose definition or overlay came from a secret
// (an SSM SecureString) in some source. The snapshot carries such values as they are
// (applications need them); everything else the daemon says about these flags —
// problems, status, the status page, logs, notifications — must not repeat what was
// derived from them: variant names, default values, validation messages quoting them.
type secretFlags map[string]bool

// secretKeys collects the keys every source marked secret. A key stays secret when a
// later source overrides it: the merged flag may still carry part of the secret (a
// patch keeps the secret definition's variants), and saying less is the safe side.
// The set is never nil: an empty set says "known: nothing is secret".
func secretKeys(results []sourceResult) secretFlags {
	out := secretFlags{}
	for _, sr := range results {
		if sr.res == nil {
			continue
		}
		for k := range sr.res.Secret {
			out[k] = true
		}
	}
	return out
}

// has tells whether key is secret-derived (a nil set has no keys).
func (s secretFlags) has(key string) bool { return s[key] }

// redactedProblem replaces a problem message about a secret-derived flag.
const redactedProblem = "invalid value derived from a secret (SecureString); details withheld to keep the secret out of status, logs and notifications: check the parameter in its store"

// redactFlagErrors rewrites, in place, the problems about secret-derived flags (see
// redact).
func (s secretFlags) redactFlagErrors(errs []FlagError) {
	for i := range errs {
		s.redact(&errs[i].Flag, &errs[i].Path, &errs[i].Message)
	}
}

// redactProblem rewrites p when it is about a secret-derived flag (see redact).
func (s secretFlags) redactProblem(p *flagset.Problem) { s.redact(&p.Flag, &p.Path, &p.Message) }

// redact replaces the message of a problem about a secret-derived flag and cuts its
// path after the field, since paths name variants (flags.<key>.variants.<name>) and
// a variant name may be the secret itself.
func (s secretFlags) redact(flag, path, msg *string) {
	if len(s) == 0 {
		return
	}
	key, ok := s.keyOf(*flag, *path)
	if !ok {
		return
	}
	*flag, *path, *msg = key, fieldPath(key, *path), redactedProblem
}

// keyOf finds the secret key a problem is about: its flag, or the longest secret key
// its path starts with (problems from some checks name only the path).
func (s secretFlags) keyOf(flag, path string) (string, bool) {
	if flag != "" {
		return flag, s.has(flag)
	}
	best := ""
	for k := range s {
		p := "flags." + k
		if (path == p || strings.HasPrefix(path, p+".")) && len(k) > len(best) {
			best = k
		}
	}
	return best, best != ""
}

// fieldPath keeps "flags.<key>" and the first field after it ("defaultVariant",
// "variants", "targeting"): the part of a path that names no value.
func fieldPath(key, path string) string {
	base := "flags." + key
	rest, ok := strings.CutPrefix(path, base+".")
	if !ok {
		return base
	}
	field, _, _ := strings.Cut(rest, ".")
	return base + "." + field
}

// isSecret tells whether key of set is secret-derived. secret is the set the sync that
// compiled set computed; nil means unknown (a snapshot read back from an output at
// start), and then every flag from SSM counts as secret until a sync says otherwise.
func isSecret(set *flagset.Set, secret secretFlags, key string) bool {
	if secret != nil {
		return secret.has(key)
	}
	if set == nil {
		return false
	}
	f, ok := set.Flag(key)
	if !ok {
		return false
	}
	src, _ := f.Metadata[flagset.MetaSource].(string)
	return strings.Contains(src, "ssm:")
}
