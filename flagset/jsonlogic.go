package flagset

// JsonLogic, as flagd evaluates it: the node tree a rule compiles to, the state
// of one evaluation and the operator table. Each operator family lives in its
// own file: jsonlogic_logic, _compare, _arith, _string, _arrays, _vars,
// _fractional and _semver; jsonlogic_values holds the JavaScript value
// semantics they share, jsonlogic_compile the compiler.

import (
	"sync"
	"time"
)

// A rule is compiled once into a tree of nodes; evaluating a node never parses
// JSON or uses reflection for decoded values. Values flowing through the tree are
// the decoded-JSON shapes: nil, bool, float64, string, []any, map[string]any.
type node interface {
	eval(s *state) any
}

// state is everything a rule can see during one evaluation.
type state struct {
	ctx     map[string]any // the caller's attributes (incl. targetingKey)
	flagKey string
	now     int64
	hasNow  bool // now is set; else the clock is read on first use
	scoped  bool // inside map/filter/reduce/all/some/none: var reads data, not ctx
	data    any
}

// timestamp is $flagd.timestamp; most rules never read it, so the clock is
// read only when one does.
func (s *state) timestamp() int64 {
	if !s.hasNow {
		s.now, s.hasNow = time.Now().Unix(), true
	}
	return s.now
}

var statePool = sync.Pool{New: func() any { return new(state) }}

type constNode struct{ v any }

func (n constNode) eval(*state) any { return n.v }

type arrayNode struct{ elems []node }

func (n arrayNode) eval(s *state) any {
	out := make([]any, len(n.elems))
	for i, e := range n.elems {
		out[i] = e.eval(s)
	}
	return out
}

// callNode is an operator; fn evaluates the arguments it needs (lazily for control operators).
type callNode struct {
	fn   func(s *state, args []node) any
	args []node
}

func (n *callNode) eval(s *state) any { return n.fn(s, n.args) }

// opSpec is an operator's implementation and its arity (max -1 = unbounded).
// Too few arguments is a load problem. Extra arguments are ignored, as
// json-logic-js does. A custom (flagd) operator given the wrong number of
// arguments is not a load problem: like flagd it evaluates to null.
type opSpec struct {
	fn       func(s *state, args []node) any
	min, max int
	custom   bool
}

var operators map[string]opSpec

func init() {
	operators = map[string]opSpec{
		"if":           {opIf, 0, -1, false},
		"?:":           {opIf, 0, -1, false},
		"==":           {opLooseEq, 2, 2, false},
		"!=":           {opLooseNe, 2, 2, false},
		"===":          {opStrictEq, 2, 2, false},
		"!==":          {opStrictNe, 2, 2, false},
		"!":            {opNot, 1, 1, false},
		"!!":           {opTruthy, 1, 1, false},
		"or":           {opOr, 0, -1, false},
		"and":          {opAnd, 0, -1, false},
		"<":            {opLess, 2, 3, false},
		"<=":           {opLessEq, 2, 3, false},
		">":            {opGreater, 2, 3, false},
		">=":           {opGreaterEq, 2, 3, false},
		"+":            {opAdd, 0, -1, false},
		"-":            {opSub, 1, -1, false},
		"*":            {opMul, 1, -1, false},
		"/":            {opDiv, 2, -1, false},
		"%":            {opMod, 2, 2, false},
		"min":          {opMin, 0, -1, false},
		"max":          {opMax, 0, -1, false},
		"in":           {opIn, 2, 2, false},
		"cat":          {opCat, 0, -1, false},
		"substr":       {opSubstr, 2, 3, false},
		"merge":        {opMerge, 0, -1, false},
		"missing":      {opMissing, 0, -1, false},
		"missing_some": {opMissingSome, 2, 2, false},
		"map":          {opMap, 2, 2, false},
		"filter":       {opFilter, 2, 2, false},
		"reduce":       {opReduce, 2, 3, false},
		"all":          {opAll, 2, 2, false},
		"some":         {opSome, 2, 2, false},
		"none":         {opNone, 2, 2, false},
		"starts_with":  {opStartsWith, 2, 2, true},
		"ends_with":    {opEndsWith, 2, 2, true},
		"sem_ver":      {opSemVer, 3, 3, true},
		"fractional":   {opFractional, 1, -1, true},
	}
}

func argAt(s *state, args []node, i int) any {
	if i < len(args) {
		return args[i].eval(s)
	}
	return nil
}
