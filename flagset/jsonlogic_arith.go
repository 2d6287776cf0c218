package flagset

// Arithmetic operators: + - * / % min max (JavaScript number semantics).

import (
	"math"
)

func opAdd(s *state, args []node) any {
	sum := 0.0
	for _, a := range args {
		f, ok := toArith(a.eval(s))
		if !ok {
			return nil
		}
		sum += f
	}
	return numResult(sum)
}

// opSub is negation with one argument, else a − b − c … in turn (as flagd's
// JsonLogic does with more than two).
func opSub(s *state, args []node) any {
	x, ok := toArith(argAt(s, args, 0))
	if !ok {
		return nil
	}
	if len(args) < 2 {
		return numResult(-x)
	}
	return arithChain(s, x, args[1:], func(a, b float64) (float64, bool) { return a - b, true })
}

// arithChain folds the remaining arguments into acc with step; any argument that
// is not a number, a step that fails, or a result that is NaN or ±∞ gives null.
func arithChain(s *state, acc float64, rest []node, step func(a, b float64) (float64, bool)) any {
	var out any = numResult(acc)
	for _, n := range rest {
		y, ok := toArith(n.eval(s))
		if !ok {
			return nil
		}
		r, ok := step(acc, y)
		if !ok {
			return nil
		}
		if out = numResult(r); out == nil {
			return nil
		}
		acc = out.(float64)
	}
	return out
}

func opMul(s *state, args []node) any {
	if len(args) == 0 {
		return nil
	}
	prod := 1.0
	for _, a := range args {
		f, ok := toArith(a.eval(s))
		if !ok {
			return nil
		}
		prod *= f
	}
	return numResult(prod)
}

func twoNumbers(s *state, args []node) (float64, float64, bool) {
	x, ok := toArith(argAt(s, args, 0))
	if !ok {
		return 0, 0, false
	}
	y, ok := toArith(argAt(s, args, 1))
	return x, y, ok
}

// opDiv is a / b / c … in turn (as flagd's JsonLogic does with more than two);
// division by zero gives null.
func opDiv(s *state, args []node) any {
	x, ok := toArith(argAt(s, args, 0))
	if !ok {
		return nil
	}
	return arithChain(s, x, args[1:], func(a, b float64) (float64, bool) { return a / b, b != 0 })
}

func opMod(s *state, args []node) any {
	x, y, ok := twoNumbers(s, args)
	if !ok || y == 0 {
		return nil
	}
	return numResult(math.Mod(x, y))
}

func minMax(s *state, args []node, isMax bool) any {
	if len(args) == 0 {
		return nil
	}
	var best float64
	for i, a := range args {
		f, ok := toArith(a.eval(s))
		if !ok {
			return nil
		}
		if i == 0 || (isMax && f > best) || (!isMax && f < best) {
			best = f
		}
	}
	return numResult(best)
}

func opMin(s *state, a []node) any { return minMax(s, a, false) }

func opMax(s *state, a []node) any { return minMax(s, a, true) }
