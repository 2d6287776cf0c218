package flagset

import (
	"bytes"
	"math"
)

// A reader's set holds no canonical encoding, and encoding 10,000 flags per
// reload only to compare them would cost more than compiling them. So Compile
// gives each flag a fingerprint: a 64-bit FNV-1a hash of what its canonical
// encoding holds, taken by the encoding's rules (1 and 1.0 are the same, true
// and 1 are not, object members in any order), and Diff compares those.

// Diff lists the flag keys added, removed and changed from old to new, sorted. A
// flag changed when its canonical encoding did (any field).
// old may be nil.
func Diff(old, new *Set) (added, removed, changed []string) {
	if new == nil {
		new = &Set{}
	}
	if old == nil {
		old = &Set{}
	}
	// Both key lists are sorted: one merge walk, no lookups.
	i, j := 0, 0
	for i < len(old.keys) || j < len(new.keys) {
		switch {
		case j == len(new.keys) || (i < len(old.keys) && old.keys[i] < new.keys[j]):
			removed = append(removed, old.keys[i])
			i++
		case i == len(old.keys) || new.keys[j] < old.keys[i]:
			added = append(added, new.keys[j])
			j++
		default:
			if old.list[i].fingerprint != new.list[j].fingerprint {
				changed = append(changed, new.keys[j])
			}
			i, j = i+1, j+1
		}
	}
	return added, removed, changed
}

// fingerprintFlag hashes f's canonical content: state, defaultVariant,
// variants (cvs, sorted by name), metadata (metaSum, the sum of hashMember over
// its members) and targeting.
func fingerprintFlag(f *Flag, cvs []*compiledVariant, metaSum uint64, canonicalRule bool) uint64 {
	h := fnvOffset
	h = hashString(h, string(f.State))
	if f.DefaultVariant == nil {
		h = hashByte(h, 'n')
	} else {
		h = hashString(hashByte(h, 's'), *f.DefaultVariant)
	}
	h = hashLen(hashByte(h, 'v'), len(cvs))
	for _, v := range cvs {
		h = hashValue(hashString(h, v.name), v.raw, 0)
	}
	h = hashObject(hashByte(h, 'm'), len(f.Metadata), metaSum)
	t := f.Targeting
	switch {
	case isEmptyTargeting(t):
		return hashByte(h, 'x')
	case canonicalRule:
		return hashBytes(hashByte(h, 'r'), t)
	}
	var buf bytes.Buffer
	if err := writeRaw(&buf, t); err != nil {
		return hashBytes(hashByte(h, '!'), t) // a problem of the flag anyway
	}
	return hashBytes(hashByte(h, 'r'), buf.Bytes())
}

const (
	fnvOffset uint64 = 14695981039346656037
	fnvPrime  uint64 = 1099511628211
)

func hashByte(h uint64, c byte) uint64 { return (h ^ uint64(c)) * fnvPrime }

func hashBytes(h uint64, b []byte) uint64 {
	for _, c := range b {
		h = (h ^ uint64(c)) * fnvPrime
	}
	return h
}

// hashString hashes s with its length, so that consecutive strings cannot run together.
func hashString(h uint64, s string) uint64 {
	h = hashLen(h, len(s))
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}

func hashLen(h uint64, n int) uint64 {
	for i := 0; i < 8; i++ {
		h = (h ^ uint64(byte(n>>(8*i)))) * fnvPrime
	}
	return h
}

// hashMember hashes one object member; an object's hash sums its members'.
func hashMember(k string, v any, depth int) uint64 {
	return hashValue(hashString(fnvOffset, k), v, depth)
}

// hashObject hashes an object of n members whose hashMember values sum to sum.
func hashObject(h uint64, n int, sum uint64) uint64 {
	return hashLen(hashLen(hashByte(h, 'o'), n), int(sum))
}

// hashValue hashes a JSON-like value by the canonical encoding's rules. An
// object's members are hashed apart and summed, so their order does not count
// and no keys are sorted.
func hashValue(h uint64, v any, depth int) uint64 {
	switch x := normalize(v).(type) {
	case nil:
		return hashByte(h, 'n')
	case bool:
		if x {
			return hashByte(h, 't')
		}
		return hashByte(h, 'f')
	case float64:
		if x == 0 {
			x = 0 // -0 is written 0
		}
		return hashLen(hashByte(h, 'd'), int(math.Float64bits(x)))
	case string:
		return hashString(hashByte(h, 's'), x)
	case []any:
		if depth > maxEncodeDepth {
			break
		}
		h = hashLen(hashByte(h, 'a'), len(x))
		for _, e := range x {
			h = hashValue(h, e, depth+1)
		}
		return h
	case map[string]any:
		if depth > maxEncodeDepth {
			break
		}
		var sum uint64
		for k, e := range x {
			sum += hashMember(k, e, depth+1)
		}
		return hashObject(h, len(x), sum)
	}
	// What normalize leaves (a Go value) is hashed by its canonical encoding.
	b, err := CanonicalValue(v)
	if err != nil {
		return hashString(hashByte(h, '!'), err.Error())
	}
	return hashBytes(hashByte(h, 'c'), b)
}
