package analytics

import (
	"encoding/json"
	"math"
	"reflect"
	"sort"
	"strconv"
	"unicode/utf8"
)

// The CSV format is shared with the Python hook (python/src/flagsync/analytics.py) and
// documented in docs/LIFECYCLE.md; both must produce byte-identical rows.

// baseColumns are the fixed leading columns of every file.
var baseColumns = []string{"timestamp", "flag_key", "variant", "value", "reason", "error_code", "targeting_key"}

// AttributePrefix prefixes the column of each recorded context attribute.
const AttributePrefix = "attr_"

// Header returns the header row (without the newline) for the given attributes.
func Header(attributes []string) string {
	b := make([]byte, 0, 128)
	for i, c := range baseColumns {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendField(b, c)
	}
	for _, a := range attributes {
		b = append(b, ',')
		b = appendField(b, AttributePrefix+a)
	}
	return string(b)
}

// appendField appends s as one CSV field: quoted (with "" for ") when it contains a
// comma, a quote, CR or LF, or starts with a space or tab; as is otherwise.
func appendField[S ~string | ~[]byte](b []byte, s S) []byte {
	need := len(s) > 0 && (s[0] == ' ' || s[0] == '\t')
	for i := 0; i < len(s) && !need; i++ {
		switch s[i] {
		case ',', '"', '\r', '\n':
			need = true
		}
	}
	if !need {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// formatValue renders a flag value or attribute as text: nil → "", bools → true/false,
// strings as is, numbers per appendNumber, anything else as compact canonical JSON.
func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	}
	if s, ok := numberString(v); ok {
		return s
	}
	return string(appendJSON(nil, v))
}

func numberString(v any) (string, bool) {
	switch x := v.(type) {
	case float64:
		return string(appendNumber(nil, x)), true
	case float32:
		return string(appendNumber(nil, float64(x))), true
	case int:
		return strconv.FormatInt(int64(x), 10), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// appendNumber writes f with the fewest digits that read back as f: positional for
// 1e-6 ≤ |f| < 1e21 (and 0), otherwise d.ddde±XX (exponent with a sign and at least
// two digits). NaN and infinities become NaN, Infinity, -Infinity.
func appendNumber(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	case f == 0:
		return append(b, '0')
	}
	if a := math.Abs(f); a >= 1e-6 && a < 1e21 {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	return strconv.AppendFloat(b, f, 'e', -1, 64)
}

// appendJSON writes v as compact JSON with sorted object keys, numbers per appendNumber
// and strings per appendJSONString. Types other than the decoded-JSON ones go through
// encoding/json first.
func appendJSON(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		if x {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case string:
		return appendJSONString(b, x)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSON(b, x[k])
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	}
	if s, ok := numberString(v); ok {
		return append(b, s...)
	}
	// Structs, typed maps and slices: normalise through encoding/json.
	raw, err := json.Marshal(v)
	if err != nil {
		return appendJSONString(b, "<unencodable "+reflect.TypeOf(v).String()+">")
	}
	var decoded any
	if err := json.Unmarshal(raw, &decoded); err != nil {
		return append(b, raw...)
	}
	return appendJSON(b, decoded)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s: \" \\ \b \f \n \r \t, other control characters and
// U+2028/U+2029 as \u00xx/\u2028/\u2029, invalid UTF-8 as U+FFFD, the rest verbatim.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				if c < 0x20 {
					b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
				} else {
					b = append(b, c)
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, "\ufffd"...)
		case r == '\u2028':
			b = append(b, `\u2028`...)
		case r == '\u2029':
			b = append(b, `\u2029`...)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
