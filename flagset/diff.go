package flagset

import (
	"bytes"
	"unicode/utf8"
)

// Diff tells changed flags apart without encoding them: a reader's set holds
// no canonical encoding, and encoding 10,000 flags twice per reload to compare
// them would cost more than compiling them. The comparison is the canonical
// encoding's equality, field by field.

// sameDefinition tells whether a and b encode to the same canonical flag
// (defaultVariant, metadata, state, targeting, variants).
func sameDefinition(a, b *compiledFlag) bool {
	fa, fb := a.def(), b.def()
	if fa.State != fb.State || (fa.DefaultVariant == nil) != (fb.DefaultVariant == nil) ||
		(fa.DefaultVariant != nil && *fa.DefaultVariant != *fb.DefaultVariant) {
		return false
	}
	if len(a.variants) != len(b.variants) || len(fa.Metadata) != len(fb.Metadata) {
		return false
	}
	for i, va := range a.variants { // sorted by name in both
		vb := b.variants[i]
		if !sameString(va.name, vb.name) || !sameValue(va.raw, vb.raw, 0) {
			return false
		}
	}
	if len(fa.Metadata) > 0 && !sameValue(fa.Metadata, fb.Metadata, 0) {
		return false
	}
	return sameTargeting(a, b)
}

// sameTargeting compares the rules' canonical texts: as they are when Parse
// wrote both, else encoded now (only flags built in Go get there).
func sameTargeting(a, b *compiledFlag) bool {
	ta, tb := a.def().Targeting, b.def().Targeting
	emptyA, emptyB := isEmptyTargeting(ta), isEmptyTargeting(tb)
	switch {
	case emptyA || emptyB:
		return emptyA == emptyB
	case bytes.Equal(ta, tb):
		return true
	case a.canonicalRule && b.canonicalRule:
		return false
	}
	ca, errA := canonicalRule(ta, a.canonicalRule)
	cb, errB := canonicalRule(tb, b.canonicalRule)
	return errA == nil && errB == nil && bytes.Equal(ca, cb)
}

// canonicalRule is the canonical text of a targeting rule.
func canonicalRule(raw []byte, canonical bool) ([]byte, error) {
	if canonical {
		return raw, nil
	}
	var buf bytes.Buffer
	err := writeRaw(&buf, raw)
	return buf.Bytes(), err
}

// sameValue tells whether two JSON-like values have the same canonical
// encoding. Decoded values compare directly; other Go values (a flag built in
// Go) are normalized first, and what is left compares by its encoding.
func sameValue(a, b any, depth int) bool {
	a, b = normalize(a), normalize(b)
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y // -0 == 0, and both encode as 0
	case string:
		y, ok := b.(string)
		return ok && sameString(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) || depth > maxEncodeDepth {
			return ok && len(x) == len(y) && sameEncoding(a, b)
		}
		for i := range x {
			if !sameValue(x[i], y[i], depth+1) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) || depth > maxEncodeDepth {
			return ok && len(x) == len(y) && sameEncoding(a, b)
		}
		for k, xv := range x {
			yv, found := y[k]
			if !found {
				// Keys differ, unless invalid UTF-8 makes two keys encode alike.
				return sameEncoding(a, b)
			}
			if !sameValue(xv, yv, depth+1) {
				return false
			}
		}
		return true
	}
	return sameEncoding(a, b)
}

// sameString compares strings as the canonical encoding writes them: invalid
// UTF-8 is written as U+FFFD, so only then may different strings be the same.
func sameString(a, b string) bool {
	if a == b {
		return true
	}
	if utf8.ValidString(a) && utf8.ValidString(b) {
		return false
	}
	return sameEncoding(a, b)
}

// sameEncoding compares canonical encodings; values that cannot be encoded
// are not the same as anything.
func sameEncoding(a, b any) bool {
	ea, errA := CanonicalValue(a)
	eb, errB := CanonicalValue(b)
	return errA == nil && errB == nil && bytes.Equal(ea, eb)
}
