package flagset

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"maps"
)

// Reload is Load for a reader replacing prev (nil: none) with data. Most
// reloads change a few flags of many; a flag whose JSON text is byte for byte
// the text prev compiled it from, without problems and under the same
// $evaluators, is neither decoded nor compiled again: the new Set shares prev's
// compiled flag. Everything else is as Load: the result, problems and errors
// are those Load returns for data.
func Reload(prev *Set, data []byte) (*Set, Problems, error) {
	d, reused, err := parse(data, prev)
	if err != nil {
		return nil, nil, err
	}
	if len(reused) > 0 && !sameEvaluators(d.Evaluators, prev.doc.Evaluators) {
		// A changed $evaluators entry can change any rule: decode it all afresh.
		return Load(data)
	}
	s, ps := compile(d, false, reused)
	return s, ps, nil
}

// textSum identifies a flag's JSON text: the first half of its SHA-256, so a
// changed flag is never taken for its old text by accident.
type textSum [16]byte

func sumText(b []byte) textSum {
	h := sha256.Sum256(b)
	return textSum(h[:16])
}

// reusable returns the compiled flag of key a reload may share: one decoded
// from JSON text whose targeting compiled without problems. s may be nil.
func (s *Set) reusable(key string) *compiledFlag {
	if s == nil {
		return nil
	}
	cf := s.flags[key]
	if cf == nil || cf.ruleErr != "" || cf.own.text == (textSum{}) {
		return nil
	}
	return cf
}

// skipObject returns the end of the JSON object starting at data[start], found
// without decoding it; ok is false when data[start] is not '{' or the object
// does not end. It trusts the text to be JSON: a reused flag's text is compared
// with text that decoded without problems.
func skipObject(data []byte, start int) (end int, ok bool) {
	if start >= len(data) || data[start] != '{' {
		return 0, false
	}
	depth := 0
	for i := start; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		}
	}
	return 0, false
}

// sameEvaluators tells whether a and b hold the same texts by name.
func sameEvaluators(a, b map[string]json.RawMessage) bool {
	return maps.EqualFunc(a, b, func(x, y json.RawMessage) bool { return bytes.Equal(x, y) })
}
