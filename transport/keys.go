package transport

import (
	"fmt"
	"strings"
)

// DefaultFlagSetID is the flag set a reader uses when it is given neither a flag set
// id nor a prefix. The daemon always names its flag set (flagSetId is required), so a
// reader left at the default finds the daemon's snapshot only when that set is
// called "default"; a reader that finds nothing lists the prefixes that do hold one.
const DefaultFlagSetID = "default"

// DefaultPrefix is the prefix of a flag set: "flagsync:<flagSetID>"
// (DefaultFlagSetID when flagSetID is empty). The daemon, the Go provider and the
// Python reader all derive it this way.
func DefaultPrefix(flagSetID string) string {
	if flagSetID == "" {
		flagSetID = DefaultFlagSetID
	}
	return "flagsync:" + flagSetID
}

// Keys are the Redis names used under one prefix.
type Keys struct {
	Snapshot   string // the snapshot JSON, one value
	Revision   string // the snapshot's revision (hex SHA-256)
	Generation string // the snapshot's generation (decimal), guards against going backwards
	Channel    string // Pub/Sub channel; each publish sends the new revision
}

// KeysFor returns the Redis names under prefix: "<base>:snapshot" and so on, where
// base is KeyBase(prefix). All of them hash to one Redis Cluster slot, so the atomic
// publish script and the snapshot+revision MGET work on a cluster.
func KeysFor(prefix string) Keys { return keysUnder(KeyBase(prefix)) }

// LegacyKeysFor returns the names used before key names carried a hash tag
// ("<prefix>:snapshot"), which the daemon keeps writing beside the new ones while
// readers of the old names are upgraded (outputs.redis.legacyKeys). For a prefix that
// already holds a hash tag both names are the same.
func LegacyKeysFor(prefix string) Keys { return keysUnder(prefix) }

func keysUnder(base string) Keys {
	return Keys{
		Snapshot:   base + ":snapshot",
		Revision:   base + ":revision",
		Generation: base + ":generation",
		Channel:    base + ":changes",
	}
}

// KeyBase is what every key name of prefix starts with: "{prefix}", so that Redis
// Cluster hashes only the prefix, or prefix itself when it already holds a hash tag
// (e.g. "{flagsync:prod}", the spelling recommended for clusters before hash tags
// were added by default, keeps its key names).
func KeyBase(prefix string) string {
	if HasHashTag(prefix) {
		return prefix
	}
	return "{" + prefix + "}"
}

// HasHashTag tells whether s holds a Redis Cluster hash tag: a "{" followed later by
// a "}" with at least one character between the first "{" and the first "}" after it.
func HasHashTag(s string) bool {
	open := strings.IndexByte(s, '{')
	if open < 0 {
		return false
	}
	end := strings.IndexByte(s[open+1:], '}')
	return end > 0
}

// ValidatePrefix checks a configured prefix: not empty, no spaces or control
// characters, and braces only as one hash tag (so every key of the prefix lands in
// one cluster slot). field names the setting in the error.
func ValidatePrefix(field, prefix string) error {
	if prefix == "" {
		return fmt.Errorf("%s: must not be empty", field)
	}
	for _, r := range prefix {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("%s: %q holds a space or control character", field, prefix)
		}
	}
	if strings.ContainsAny(prefix, "{}") {
		open := strings.IndexByte(prefix, '{')
		close := strings.IndexByte(prefix, '}')
		if !HasHashTag(prefix) || close < open || strings.Count(prefix, "{") != 1 || strings.Count(prefix, "}") != 1 {
			return fmt.Errorf("%s: %q has braces that are not one hash tag like {flagsync:prod}; "+
				"leave them out (key names get a hash tag around the prefix anyway)", field, prefix)
		}
	}
	return nil
}

// PrefixOfSnapshotKey returns the prefix a reader is configured with to read the
// snapshot key key, and whether key has the old shape (written only while
// legacyKeys is on, and read only by readers older than hash-tagged names).
// ok is false when key is not a snapshot key.
func PrefixOfSnapshotKey(key string) (prefix string, legacy, ok bool) {
	base, found := strings.CutSuffix(key, ":snapshot")
	if !found || base == "" {
		return "", false, false
	}
	if inner, wrapped := strings.CutPrefix(base, "{"); wrapped && strings.HasSuffix(inner, "}") {
		inner = strings.TrimSuffix(inner, "}")
		if inner != "" && !strings.ContainsAny(inner, "{}") {
			return inner, false, true
		}
	}
	if HasHashTag(base) {
		return base, false, true // a prefix with its own tag: the same names in both shapes
	}
	return base, true, true
}
