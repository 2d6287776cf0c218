package flagset

// Compiling JsonLogic: a rule (and each $evaluators entry, once) becomes a
// tree of nodes; every problem is found here, so evaluation never fails to parse.

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unsafe"
)

// ruleCompiler compiles rules of one document; $evaluators are compiled once and shared.
type ruleCompiler struct {
	evaluators map[string]json.RawMessage
	locate     bool     // track where in a rule each problem is (only when re-compiling a bad rule)
	size       int      // nodes compiled so far in the current rule
	scratch    []string // reusable key slice for compileFlag
	// variants holds the compiled variants of Variants maps already compiled; Parse
	// shares identical maps between flags, and compiled variants are immutable.
	// With shared non-nil, only the maps in it are kept.
	variants map[unsafe.Pointer][]*compiledVariant
	shared   map[unsafe.Pointer]struct{}
	done     map[string]*compiledEvaluator
	active   map[string]bool // evaluators being compiled, to detect $ref cycles
	// level is the nesting level compile is at (the rule object is 1) and deepest
	// the deepest level of the current rule with every $ref inlined.
	level, deepest int
}

type compiledEvaluator struct {
	n      node
	errs   []string
	size   int // nodes after $ref expansion (saturates above maxRuleNodes)
	height int // nesting levels with every $ref inlined
}

// enter and leave track the nesting level of the operation or array being compiled.
func (c *ruleCompiler) enter() {
	c.level++
	c.deepest = max(c.deepest, c.level)
}

func (c *ruleCompiler) leave() { c.level-- }

// tooDeep is the problem of a rule that, with its $refs inlined, nests deeper than
// MaxDepth: evaluating it would recurse that deep, and the limit must be the same
// for every reader.
func tooDeep() string {
	return fmt.Sprintf("rule nests deeper than %d levels once every $ref is inlined", MaxDepth)
}

// maxRuleNodes bounds a rule's size after $ref expansion. Evaluators can refer
// to each other many times over (e2 = [e1, e1], e3 = [e2, e2], ...), which
// compiles to a small shared graph but would evaluate exponentially long.
const maxRuleNodes = 100_000

// addSize adds n to the size counter without overflowing.
func (c *ruleCompiler) addSize(n int) {
	c.size += n
	if c.size > maxRuleNodes {
		c.size = maxRuleNodes + 1
	}
}

func tooLarge() string {
	return fmt.Sprintf("rule is too large: more than %d operations and values after $ref expansion", maxRuleNodes)
}

func newRuleCompiler(evaluators map[string]json.RawMessage) *ruleCompiler {
	return &ruleCompiler{
		evaluators: evaluators,
		done:       make(map[string]*compiledEvaluator),
		active:     make(map[string]bool),
	}
}

// keepVariants tells whether the compiled variants of m are worth keeping for
// other flags: when m is known to be shared, or nothing is known.
func (c *ruleCompiler) keepVariants(m map[string]any) bool {
	if c.shared == nil {
		return true
	}
	_, ok := c.shared[mapIdentity(m)]
	return ok
}

// fork returns a compiler for another goroutine. It shares the compiled
// evaluators, which must all be compiled already (Compile does that first):
// from then on the shared maps are only read.
func (c *ruleCompiler) fork() *ruleCompiler {
	return &ruleCompiler{evaluators: c.evaluators, done: c.done, active: c.active, shared: c.shared}
}

// evaluator compiles (once) the named $evaluators entry.
func (c *ruleCompiler) evaluator(name string) (*compiledEvaluator, bool) {
	if ce, ok := c.done[name]; ok {
		return ce, true
	}
	raw, ok := c.evaluators[name]
	if !ok {
		return nil, false
	}
	c.active[name] = true
	ce := &compiledEvaluator{}
	var v any
	if err := checkJSONDepth(raw); err != nil {
		ce.errs = append(ce.errs, err.Error())
	} else if err := json.Unmarshal(raw, &v); err != nil {
		ce.errs = append(ce.errs, "invalid JSON: "+err.Error())
	} else if _, ok := v.(map[string]any); !ok {
		ce.errs = append(ce.errs, "must be a JsonLogic object, got "+typeName(v))
	} else {
		outer, outerLevel, outerDeepest := c.size, c.level, c.deepest
		c.size, c.level, c.deepest = 0, 0, 0
		ce.n = c.compile(v, nil, &ce.errs)
		ce.size, ce.height = c.size, c.deepest
		c.size, c.level, c.deepest = outer, outerLevel, outerDeepest
		if len(ce.errs) > 0 && !c.locate {
			// Compile again, now recording positions, for messages that say where.
			ce.errs = ce.errs[:0]
			c.locate = true
			c.compile(v, nil, &ce.errs)
			c.locate = false
		}
		// The limits are checked after that pass, which could not find them again.
		if ce.size > maxRuleNodes && len(ce.errs) == 0 {
			ce.errs = append(ce.errs, tooLarge())
		}
		if ce.height > MaxDepth && len(ce.errs) == 0 {
			ce.errs = append(ce.errs, tooDeep())
		}
	}
	delete(c.active, name)
	c.done[name] = ce
	return ce, true
}

// compileTargeting compiles a flag's targeting; errs lists every reason it cannot be evaluated.
func (c *ruleCompiler) compileTargeting(f *Flag) (node, []string) {
	var v any
	raw := f.Targeting
	if rule, ok := f.parsedRule(); ok {
		v = rule // Parse decoded it (valid, within MaxDepth): no second decode
	} else {
		if err := checkJSONDepth(raw); err != nil {
			return nil, []string{err.Error()}
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, []string{"invalid JSON: " + err.Error()}
		}
	}
	if typeName(v) != "object" {
		return nil, []string{"must be a JsonLogic object, got " + typeName(v)}
	}
	var errs []string
	c.size, c.level, c.deepest = 0, 0, 0
	n := c.compile(v, nil, &errs)
	if c.size > maxRuleNodes && len(errs) == 0 {
		return nil, []string{tooLarge()}
	}
	if c.deepest > MaxDepth && len(errs) == 0 {
		return nil, []string{tooDeep()}
	}
	if len(errs) > 0 {
		// Compile again, now recording positions, for messages that say where.
		errs = errs[:0]
		c.locate = true
		c.compile(v, nil, &errs)
		c.locate = false
		return nil, errs
	}
	return n, nil
}

// at returns the position of argument idx of op, when positions are tracked.
func (c *ruleCompiler) at(parent *rulePath, op string, idx int) *rulePath {
	if !c.locate {
		return nil
	}
	return &rulePath{parent, op, idx}
}

// rulePath locates a sub-rule for problem messages; it is only rendered when a
// problem is found, so compiling valid rules builds no strings.
type rulePath struct {
	parent *rulePath
	op     string // operator whose argument this is; "" for an array element
	idx    int
}

func (p *rulePath) String() string {
	if p == nil {
		return ""
	}
	s := p.parent.String()
	if p.op != "" {
		if s != "" {
			s += "."
		}
		s += p.op
	}
	return s + "[" + strconv.Itoa(p.idx) + "]"
}

func where(at *rulePath) string {
	if at == nil {
		return ""
	}
	return " (at " + at.String() + ")"
}

func (c *ruleCompiler) compile(v any, at *rulePath, errs *[]string) node {
	c.addSize(1)
	switch x := v.(type) {
	case []any:
		if isLiteral(x, 0) {
			return constNode{x} // no operation inside: nothing to compile
		}
		c.enter()
		defer c.leave()
		elems := make([]node, len(x))
		allConst := true
		for i, e := range x {
			elems[i] = c.compile(e, c.at(at, "", i), errs)
			if _, ok := elems[i].(constNode); !ok {
				allConst = false
			}
		}
		if allConst {
			return constNode{x}
		}
		return arrayNode{elems}
	case ruleOp:
		return c.compileOp(x.op, x.arg, at, errs)
	case map[string]any:
		if len(x) != 1 {
			// Like json-logic-js: an object that is not {operator: args} is data.
			return constNode{x}
		}
		for op, rawArgs := range x {
			return c.compileOp(op, rawArgs, at, errs)
		}
	case int, int64, float32: // values built in Go rather than decoded
		return constNode{normalize(x)}
	}
	return constNode{v}
}

// compileOp compiles the operation {op: rawArgs}.
func (c *ruleCompiler) compileOp(op string, rawArgs any, at *rulePath, errs *[]string) node {
	c.enter()
	defer c.leave()
	if op == "$ref" {
		return c.compileRef(rawArgs, at, errs)
	}
	if op == "var" {
		return c.compileVar(rawArgs, at, errs)
	}
	spec, ok := operators[op]
	if !ok {
		*errs = append(*errs, fmt.Sprintf("unknown operator %q%s", op, where(at)))
		return constNode{nil}
	}
	argList, isList := rawArgs.([]any)
	if !isList {
		argList = []any{rawArgs}
	}
	wrongArity := len(argList) < spec.min || (spec.max >= 0 && len(argList) > spec.max)
	if wrongArity && !spec.custom && len(argList) < spec.min {
		*errs = append(*errs, fmt.Sprintf("operator %q takes %s, got %d%s", op, arityText(spec), len(argList), where(at)))
	}
	args := make([]node, len(argList))
	for i, a := range argList {
		args[i] = c.compile(a, c.at(at, op, i), errs)
	}
	if wrongArity && spec.custom {
		return constNode{nil} // flagd: a custom operator with bad arguments is null
	}
	if spec.max >= 0 && len(args) > spec.max {
		args = args[:spec.max] // extra arguments are ignored (json-logic-js)
	}
	if op == "sem_ver" && len(args) == 3 {
		if n := constSemver(args); n != nil {
			return n
		}
	}
	return &callNode{fn: spec.fn, args: args}
}

// isLiteral tells whether v contains no operation (an object with exactly one
// key), so it evaluates to itself.
func isLiteral(v any, depth int) bool {
	switch x := v.(type) {
	case []any:
		if depth > MaxDepth {
			return false
		}
		for _, e := range x {
			if !isLiteral(e, depth+1) {
				return false
			}
		}
	case map[string]any:
		return len(x) != 1
	case ruleOp, int, int64, float32:
		return false // an operation; or a number compile normalizes
	}
	return true
}

func arityText(s opSpec) string {
	switch {
	case s.min == s.max && s.min == 1:
		return "1 argument"
	case s.min == s.max:
		return fmt.Sprintf("%d arguments", s.min)
	case s.max < 0:
		return fmt.Sprintf("at least %d arguments", s.min)
	}
	return fmt.Sprintf("%d to %d arguments", s.min, s.max)
}

func (c *ruleCompiler) compileRef(arg any, at *rulePath, errs *[]string) node {
	name, ok := arg.(string)
	if !ok {
		*errs = append(*errs, fmt.Sprintf("$ref must name an evaluator (a string), got %s%s", typeName(arg), where(at)))
		return constNode{nil}
	}
	if c.active[name] {
		*errs = append(*errs, fmt.Sprintf("$ref %q is cyclic%s", name, where(at)))
		return constNode{nil}
	}
	ce, ok := c.evaluator(name)
	if !ok {
		*errs = append(*errs, fmt.Sprintf("$ref %q: no such evaluator%s", name, where(at)))
		return constNode{nil}
	}
	if len(ce.errs) > 0 {
		*errs = append(*errs, fmt.Sprintf("$ref %q: evaluator is invalid: %s%s", name, invalidBecause(ce.errs), where(at)))
		return constNode{nil}
	}
	c.addSize(ce.size)
	// the evaluator's rule takes the place of the {"$ref": name} object
	c.deepest = max(c.deepest, c.level-1+ce.height)
	return ce.n
}

// invalidBecause says why an evaluator is invalid in a message about a $ref to it:
// its first problem only (each is reported at $evaluators.<name> anyway), so
// evaluators that refer to invalid ones many times over (e2 = [e1, e1], ...) do
// not build messages that double in size at every level.
func invalidBecause(errs []string) string {
	if len(errs) == 1 {
		return errs[0]
	}
	return fmt.Sprintf("%s (and %d more)", errs[0], len(errs)-1)
}
