package flagset

// Logic operators: if (and ?:), !, !!, or, and.

func opIf(s *state, args []node) any {
	i := 0
	for ; i+1 < len(args); i += 2 {
		if truthy(args[i].eval(s)) {
			return args[i+1].eval(s)
		}
	}
	if i < len(args) {
		return args[i].eval(s)
	}
	return nil
}

func opNot(s *state, a []node) any { return !truthy(argAt(s, a, 0)) }

func opTruthy(s *state, a []node) any { return truthy(argAt(s, a, 0)) }

func opOr(s *state, args []node) any {
	var v any
	for _, a := range args {
		v = a.eval(s)
		if truthy(v) {
			return v
		}
	}
	return v
}

func opAnd(s *state, args []node) any {
	var v any
	for _, a := range args {
		v = a.eval(s)
		if !truthy(v) {
			return v
		}
	}
	return v
}
