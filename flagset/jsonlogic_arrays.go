package flagset

// Array operators: merge, and map, filter, all, some, none and reduce, which
// evaluate a rule with each element as the data.

func opMerge(s *state, args []node) any {
	out := make([]any, 0, len(args))
	for _, a := range args {
		v := a.eval(s)
		if arr, ok := v.([]any); ok {
			out = append(out, arr...)
		} else {
			out = append(out, v)
		}
	}
	return out
}

// scoped evaluates logic with data as the whole data (inside map/filter/...).
func scoped(s *state, logic node, data any) any {
	oldScoped, oldData := s.scoped, s.data
	s.scoped, s.data = true, data
	v := logic.eval(s)
	s.scoped, s.data = oldScoped, oldData
	return v
}

func opMap(s *state, args []node) any {
	arr, _ := argAt(s, args, 0).([]any)
	out := make([]any, len(arr))
	for i, e := range arr {
		out[i] = scoped(s, args[1], e)
	}
	return out
}

func filterList(s *state, args []node) []any {
	arr, _ := argAt(s, args, 0).([]any)
	out := []any{}
	for _, e := range arr {
		if truthy(scoped(s, args[1], e)) {
			out = append(out, e)
		}
	}
	return out
}

func opFilter(s *state, args []node) any { return filterList(s, args) }

func opSome(s *state, args []node) any { return len(filterList(s, args)) > 0 }

func opNone(s *state, args []node) any { return len(filterList(s, args)) == 0 }

func opAll(s *state, args []node) any {
	arr, _ := argAt(s, args, 0).([]any)
	if len(arr) == 0 {
		return false
	}
	for _, e := range arr {
		if !truthy(scoped(s, args[1], e)) {
			return false
		}
	}
	return true
}

func opReduce(s *state, args []node) any {
	data := argAt(s, args, 0)
	acc := argAt(s, args, 2)
	arr, ok := data.([]any)
	if !ok {
		return acc
	}
	for _, e := range arr {
		acc = scoped(s, args[1], map[string]any{"current": e, "accumulator": acc})
	}
	return acc
}
