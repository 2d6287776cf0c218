package flagset

// String operators: in (substring or array membership), cat, substr, and
// flagd's starts_with and ends_with.

import (
	"strings"
)

func opIn(s *state, args []node) any {
	needle, hay := argAt(s, args, 0), argAt(s, args, 1)
	switch h := hay.(type) {
	case string:
		return strings.Contains(h, toJSString(needle))
	case []any:
		for _, e := range h {
			if strictEq(needle, e) {
				return true
			}
		}
	}
	return false
}

func opCat(s *state, args []node) any {
	if len(args) == 1 {
		return catString(args[0].eval(s))
	}
	var b strings.Builder
	for _, a := range args {
		b.WriteString(catString(a.eval(s)))
	}
	return b.String()
}

// catString is one cat argument as text: null adds nothing (json-logic-js joins
// its arguments, and flagd's JsonLogic does the same).
func catString(v any) string {
	if v == nil {
		return ""
	}
	return toJSString(v)
}

// opSubstr is json-logic-js substr, counting Unicode code points.
func opSubstr(s *state, args []node) any {
	src := []rune(toJSString(argAt(s, args, 0)))
	n := len(src)
	start := toInteger(argAt(s, args, 1))
	if start < 0 {
		start = max(n+start, 0)
	}
	start = min(start, n)
	rest := src[start:]
	if len(args) < 3 {
		return string(rest)
	}
	length := toInteger(args[2].eval(s))
	if length < 0 {
		length = len(rest) + length
	}
	length = max(min(length, len(rest)), 0)
	return string(rest[:length])
}

func opStartsWith(s *state, args []node) any {
	a, ok1 := argAt(s, args, 0).(string)
	b, ok2 := argAt(s, args, 1).(string)
	if !ok1 || !ok2 {
		return nil
	}
	return strings.HasPrefix(a, b)
}

func opEndsWith(s *state, args []node) any {
	a, ok1 := argAt(s, args, 0).(string)
	b, ok2 := argAt(s, args, 1).(string)
	if !ok1 || !ok2 {
		return nil
	}
	return strings.HasSuffix(a, b)
}
