package flagset

// flagd's fractional operator: weighted, sticky bucketing of a caller by the
// MurmurHash3 of its bucketing key.

import (
	"math"
)

// maxFractionalWeight is the largest total weight fractional accepts (2^31-1).
const maxFractionalWeight = math.MaxInt32

// opFractional buckets the caller into one of the weighted variants (see
// docs/FORMAT.md). Like flagd, anything malformed evaluates to null.
func opFractional(s *state, args []node) any {
	var stackVals [8]any
	vals := stackVals[:0]
	for _, a := range args {
		vals = append(vals, a.eval(s))
	}
	// The first argument is the bucketing value unless it is an entry (an
	// array). A null one (e.g. a var of a missing attribute) falls back to
	// flagKey + targetingKey, like an absent one; any other non-string is null.
	var key, key2 string
	entries := vals
	switch first := vals[0].(type) {
	case string:
		key, entries = first, vals[1:]
	case nil, []any:
		if first == nil {
			entries = vals[1:]
		}
		tk, ok := s.ctx["targetingKey"].(string)
		if !ok || tk == "" {
			return nil
		}
		key, key2 = s.flagKey, tk
	default:
		return nil
	}
	if len(entries) == 0 {
		return nil
	}
	type bucket struct {
		variant any // the entry's own (already boxed) name: returning it does not allocate
		weight  uint64
	}
	var stack [8]bucket
	buckets := stack[:0]
	var total uint64
	for _, e := range entries {
		arr, ok := e.([]any)
		if !ok || len(arr) == 0 {
			return nil
		}
		switch arr[0].(type) {
		case string, bool, float64, nil:
		default:
			return nil
		}
		w := 1.0 // elements after the weight are ignored, as flagd does
		if len(arr) >= 2 && arr[1] != nil {
			f, ok := arr[1].(float64)
			if !ok || f != math.Trunc(f) || f < 0 || f > maxFractionalWeight {
				return nil
			}
			w = f
		}
		total += uint64(w)
		if total > maxFractionalWeight {
			return nil
		}
		buckets = append(buckets, bucket{arr[0], uint64(w)})
	}
	if total == 0 {
		return nil
	}
	b := (uint64(murmur3Concat(key, key2)) * total) >> 32
	var cum uint64
	for _, e := range buckets {
		cum += e.weight
		if b < cum {
			return e.variant
		}
	}
	return nil // unreachable: b < total
}
