package flagset

// Comparison operators: == != (loose, JavaScript coercion), === !== (strict),
// and the < <= > >= chains.

func looseEq(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case float64:
		switch y := b.(type) {
		case float64:
			return x == y
		case string:
			return x == toNumberJS(y)
		case bool:
			return x == toNumberJS(y)
		}
	case string:
		switch y := b.(type) {
		case string:
			return x == y
		case float64:
			return toNumberJS(x) == y
		case bool:
			return toNumberJS(x) == toNumberJS(y)
		}
	case bool:
		switch y := b.(type) {
		case bool:
			return x == y
		case float64, string:
			return looseEq(toNumberJS(x), y)
		}
	}
	return false
}

func strictEq(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	}
	return false
}

// less is JavaScript a < b (orEqual: a <= b): strings compare by code point,
// everything else numerically; NaN compares false.
func less(a, b any, orEqual bool) bool {
	if as, ok := a.(string); ok {
		if bs, ok := b.(string); ok {
			if orEqual {
				return as <= bs
			}
			return as < bs
		}
	}
	x, y := toNumberJS(a), toNumberJS(b)
	if orEqual {
		return x <= y
	}
	return x < y
}

func opLooseEq(s *state, a []node) any { return looseEq(argAt(s, a, 0), argAt(s, a, 1)) }

func opLooseNe(s *state, a []node) any { return !looseEq(argAt(s, a, 0), argAt(s, a, 1)) }

func opStrictEq(s *state, a []node) any { return strictEq(argAt(s, a, 0), argAt(s, a, 1)) }

func opStrictNe(s *state, a []node) any { return !strictEq(argAt(s, a, 0), argAt(s, a, 1)) }

func compareChain(s *state, args []node, orEqual bool) any {
	a, b := argAt(s, args, 0), argAt(s, args, 1)
	if len(args) < 3 {
		return less(a, b, orEqual)
	}
	if !less(a, b, orEqual) {
		return false
	}
	return less(b, args[2].eval(s), orEqual)
}

func opLess(s *state, a []node) any { return compareChain(s, a, false) }

func opLessEq(s *state, a []node) any { return compareChain(s, a, true) }

func opGreater(s *state, a []node) any { return compareChainDown(s, a, false) }

func opGreaterEq(s *state, a []node) any { return compareChainDown(s, a, true) }

// compareChainDown is > / >= : with three arguments a descending chain
// a > b > c, as flagd's JsonLogic evaluates it.
func compareChainDown(s *state, args []node, orEqual bool) any {
	a, b := argAt(s, args, 0), argAt(s, args, 1)
	if len(args) < 3 {
		return less(b, a, orEqual)
	}
	if !less(b, a, orEqual) {
		return false
	}
	return less(args[2].eval(s), b, orEqual)
}
