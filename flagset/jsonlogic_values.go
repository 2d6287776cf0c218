package flagset

// JavaScript value semantics as json-logic-js applies them: truthiness and
// conversion to number, integer and string.

import (
	"math"
	"strconv"
	"strings"
)

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0 && !math.IsNaN(x)
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0 // flagd (Go and Python): an empty object is falsy
	}
	return true
}

// jsWhitespace is what JavaScript's StringToNumber trims.
const jsWhitespace = " \t\n\v\f\r\u00a0\ufeff\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"

// parseDecimal parses a decimal literal: [+-] digits [. digits] [e [+-] digits] (or .digits).
func parseDecimal(s string) (float64, bool) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		ed := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			ed++
		}
		if ed == 0 {
			return 0, false
		}
	}
	if i != len(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// toNumberJS is JavaScript ToNumber for comparisons and loose equality:
// null → 0, booleans → 0/1, "" and blank → 0, decimal strings → value, else NaN.
func toNumberJS(v any) float64 {
	switch x := v.(type) {
	case nil:
		return 0
	case bool:
		if x {
			return 1
		}
		return 0
	case float64:
		return x
	case string:
		t := strings.Trim(x, jsWhitespace)
		if t == "" {
			return 0
		}
		switch t {
		case "Infinity", "+Infinity":
			return math.Inf(1)
		case "-Infinity":
			return math.Inf(-1)
		}
		if f, ok := parseDecimal(t); ok {
			return f
		}
	}
	return math.NaN()
}

// toArith is the stricter coercion of arithmetic (+ - * / % min max): numbers,
// and strings holding a decimal number (surrounding whitespace allowed). Anything
// else does not coerce and makes the result null.
func toArith(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		t := strings.Trim(x, jsWhitespace)
		return parseDecimal(t)
	}
	return 0, false
}

// numResult boxes an arithmetic result; NaN and ±Infinity (not JSON) become null.
func numResult(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	if f == 0 {
		return float64(0) // no -0
	}
	return f
}

// toJSString is JavaScript String(v) for decoded values.
func toJSString(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return FormatNumber(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			if e != nil {
				parts[i] = toJSString(e)
			}
		}
		return strings.Join(parts, ",")
	case map[string]any:
		return "[object Object]"
	}
	return toJSString(normalize(v))
}

// toInteger is JavaScript ToIntegerOrInfinity, clamped to a safe int range.
func toInteger(v any) int {
	f := toNumberJS(v)
	if math.IsNaN(f) {
		return 0
	}
	f = math.Trunc(f)
	if f > 1e15 {
		return 1e15
	}
	if f < -1e15 {
		return -1e15
	}
	return int(f)
}
