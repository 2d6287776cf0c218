package flagset

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
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
	size   int // nodes after $ref expansion (saturates above MaxRuleNodes)
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

// MaxRuleNodes bounds a rule's size after $ref expansion. Evaluators can refer
// to each other many times over (e2 = [e1, e1], e3 = [e2, e2], ...), which
// compiles to a small shared graph but would evaluate exponentially long.
const MaxRuleNodes = 100_000

// addSize adds n to the size counter without overflowing.
func (c *ruleCompiler) addSize(n int) {
	c.size += n
	if c.size > MaxRuleNodes {
		c.size = MaxRuleNodes + 1
	}
}

func tooLarge() string {
	return fmt.Sprintf("rule is too large: more than %d operations and values after $ref expansion", MaxRuleNodes)
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
		if ce.size > MaxRuleNodes && len(ce.errs) == 0 {
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
	if c.size > MaxRuleNodes && len(errs) == 0 {
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

// ---- var ----

type varNode struct {
	path    []string // static path; nil with dyn == nil means the whole data
	dyn     node     // computed path
	def     node     // default when not found; nil → null
	flagdFn int      // fast paths for $flagd.flagKey (1) and $flagd.timestamp (2)
}

func (c *ruleCompiler) compileVar(rawArgs any, at *rulePath, errs *[]string) node {
	argList, isList := rawArgs.([]any)
	if !isList {
		argList = []any{rawArgs}
	}
	if len(argList) > 2 {
		*errs = append(*errs, fmt.Sprintf("operator \"var\" takes 0 to 2 arguments, got %d%s", len(argList), where(at)))
	}
	vn := &varNode{}
	if len(argList) >= 2 {
		vn.def = c.compile(argList[1], c.at(at, "var", 1), errs)
	}
	if len(argList) == 0 {
		return vn
	}
	pn := c.compile(argList[0], c.at(at, "var", 0), errs)
	if k, ok := pn.(constNode); ok {
		vn.path = splitPath(k.v)
		if len(vn.path) == 2 && vn.path[0] == "$flagd" {
			switch vn.path[1] {
			case "flagKey":
				vn.flagdFn = 1
			case "timestamp":
				vn.flagdFn = 2
			}
		}
		return vn
	}
	vn.dyn = pn
	return vn
}

// splitPath turns a var path value into its segments; nil means the whole data.
func splitPath(p any) []string {
	if p == nil {
		return nil
	}
	s := toJSString(p)
	if s == "" {
		return nil
	}
	return strings.Split(s, ".")
}

func (n *varNode) eval(s *state) any {
	if n.flagdFn != 0 && !s.scoped {
		if n.flagdFn == 1 {
			return s.flagKey
		}
		return float64(s.timestamp())
	}
	path := n.path
	if n.dyn != nil {
		path = splitPath(n.dyn.eval(s))
	}
	v, ok := s.lookup(path)
	if !ok || v == nil {
		// flagd (Go and Python) use the default for a present null too.
		if n.def != nil {
			return n.def.eval(s)
		}
		return nil
	}
	return v
}

// lookup resolves a var path; ok is false when a segment is missing (JS undefined).
func (s *state) lookup(path []string) (any, bool) {
	if len(path) == 0 {
		if s.scoped {
			return s.data, true
		}
		return s.wholeData(), true
	}
	var cur any
	rest := path[1:]
	if s.scoped {
		cur = s.data
		rest = path
	} else if path[0] == "$flagd" {
		cur = map[string]any{"flagKey": s.flagKey, "timestamp": float64(s.timestamp())}
	} else {
		v, ok := s.ctx[path[0]]
		if !ok {
			return nil, false
		}
		cur = normalize(v)
	}
	for _, seg := range rest {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return nil, false
			}
			cur = normalize(v)
		case []any:
			i, ok := arrayIndex(seg)
			if !ok || i >= len(c) {
				return nil, false
			}
			cur = normalize(c[i])
		default:
			return nil, false
		}
	}
	return cur, true
}

// arrayIndex parses a canonical non-negative integer ("0", "12"; not "01", "-1").
func arrayIndex(s string) (int, bool) {
	if s == "" || len(s) > 9 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// wholeData materializes the data a rule sees ({"var": ""}).
func (s *state) wholeData() map[string]any {
	m := make(map[string]any, len(s.ctx)+1)
	for k, v := range s.ctx {
		m[k] = normalizeDeep(v, 0)
	}
	m["$flagd"] = map[string]any{"flagKey": s.flagKey, "timestamp": float64(s.timestamp())}
	return m
}

// ---- value semantics (JavaScript / json-logic-js) ----

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

// ---- operators ----

func argAt(s *state, args []node, i int) any {
	if i < len(args) {
		return args[i].eval(s)
	}
	return nil
}

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

func opLooseEq(s *state, a []node) any  { return looseEq(argAt(s, a, 0), argAt(s, a, 1)) }
func opLooseNe(s *state, a []node) any  { return !looseEq(argAt(s, a, 0), argAt(s, a, 1)) }
func opStrictEq(s *state, a []node) any { return strictEq(argAt(s, a, 0), argAt(s, a, 1)) }
func opStrictNe(s *state, a []node) any { return !strictEq(argAt(s, a, 0), argAt(s, a, 1)) }
func opNot(s *state, a []node) any      { return !truthy(argAt(s, a, 0)) }
func opTruthy(s *state, a []node) any   { return truthy(argAt(s, a, 0)) }

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

func opLess(s *state, a []node) any      { return compareChain(s, a, false) }
func opLessEq(s *state, a []node) any    { return compareChain(s, a, true) }
func opGreater(s *state, a []node) any   { return compareChainDown(s, a, false) }
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

func missingKeys(s *state, keys []any) []any {
	out := []any{}
	for _, k := range keys {
		v, ok := s.lookup(splitPath(k))
		if !ok || v == nil || v == "" {
			out = append(out, k)
		}
	}
	return out
}

func opMissing(s *state, args []node) any {
	vals := make([]any, len(args))
	for i, a := range args {
		vals[i] = a.eval(s)
	}
	if len(vals) > 0 {
		if arr, ok := vals[0].([]any); ok {
			return missingKeys(s, arr)
		}
	}
	return missingKeys(s, vals)
}

func opMissingSome(s *state, args []node) any {
	need := toNumberJS(argAt(s, args, 0))
	opts, _ := argAt(s, args, 1).([]any)
	miss := missingKeys(s, opts)
	if float64(len(opts)-len(miss)) >= need {
		return []any{}
	}
	return miss
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
func opSome(s *state, args []node) any   { return len(filterList(s, args)) > 0 }
func opNone(s *state, args []node) any   { return len(filterList(s, args)) == 0 }

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

// maxFractionalWeight is the largest total weight fractional accepts (2^31-1).
const maxFractionalWeight = math.MaxInt32

// opFractional buckets the caller into one of the weighted variants (see
// docs/FORMAT.md). Like flagd, anything malformed evaluates to null.
func opFractional(s *state, args []node) any {
	var stackVals [8]any
	vals := stackVals[:0]
	for _, a := range args {
		vals = append(vals, a.eval(s))
	}
	// The first argument is the bucketing value unless it is an entry (an
	// array). A null one (e.g. a var of a missing attribute) falls back to
	// flagKey + targetingKey, like an absent one; any other non-string is null.
	var key, key2 string
	entries := vals
	switch first := vals[0].(type) {
	case string:
		key, entries = first, vals[1:]
	case nil, []any:
		if first == nil {
			entries = vals[1:]
		}
		tk, ok := s.ctx["targetingKey"].(string)
		if !ok || tk == "" {
			return nil
		}
		key, key2 = s.flagKey, tk
	default:
		return nil
	}
	if len(entries) == 0 {
		return nil
	}
	type bucket struct {
		variant any // the entry's own (already boxed) name: returning it does not allocate
		weight  uint64
	}
	var stack [8]bucket
	buckets := stack[:0]
	var total uint64
	for _, e := range entries {
		arr, ok := e.([]any)
		if !ok || len(arr) == 0 {
			return nil
		}
		switch arr[0].(type) {
		case string, bool, float64, nil:
		default:
			return nil
		}
		w := 1.0 // elements after the weight are ignored, as flagd does
		if len(arr) >= 2 && arr[1] != nil {
			f, ok := arr[1].(float64)
			if !ok || f != math.Trunc(f) || f < 0 || f > maxFractionalWeight {
				return nil
			}
			w = f
		}
		total += uint64(w)
		if total > maxFractionalWeight {
			return nil
		}
		buckets = append(buckets, bucket{arr[0], uint64(w)})
	}
	if total == 0 {
		return nil
	}
	b := (uint64(murmur3Concat(key, key2)) * total) >> 32
	var cum uint64
	for _, e := range buckets {
		cum += e.weight
		if b < cum {
			return e.variant
		}
	}
	return nil // unreachable: b < total
}

func opSemVer(s *state, args []node) any {
	a, ok1 := semverArg(argAt(s, args, 0))
	op, ok2 := argAt(s, args, 1).(string)
	b, ok3 := semverArg(argAt(s, args, 2))
	if !ok1 || !ok2 || !ok3 {
		return nil
	}
	va, ok1 := parseSemver(a)
	vb, ok2 := parseSemver(b)
	if !ok1 || !ok2 {
		return nil
	}
	return semverOp(va, op, vb)
}

// semverOp applies a sem_ver operator; an unknown operator gives null.
func semverOp(va semver, op string, vb semver) any {
	switch op {
	case "=":
		return compareSemver(va, vb) == 0
	case "!=":
		return compareSemver(va, vb) != 0
	case "<":
		return compareSemver(va, vb) < 0
	case "<=":
		return compareSemver(va, vb) <= 0
	case ">":
		return compareSemver(va, vb) > 0
	case ">=":
		return compareSemver(va, vb) >= 0
	case "^":
		return va.major == vb.major
	case "~":
		return va.major == vb.major && va.minor == vb.minor
	}
	return nil
}

// semverConstNode is sem_ver with a constant operator and right-hand version
// (the usual form: {"sem_ver": [{"var": "appVersion"}, ">=", "2.4.0"]}),
// parsed once at compile time.
type semverConstNode struct {
	a  node
	op string
	b  semver
}

// constSemver returns the pre-parsed form, or nil when op or b are computed
// or invalid (then the general operator handles them).
func constSemver(args []node) node {
	op, ok1 := args[1].(constNode)
	b, ok2 := args[2].(constNode)
	if !ok1 || !ok2 {
		return nil
	}
	ops, ok1 := op.v.(string)
	bs, ok2 := semverArg(b.v)
	if !ok1 || !ok2 {
		return nil
	}
	vb, ok := parseSemver(bs)
	if !ok {
		return nil
	}
	return &semverConstNode{a: args[0], op: ops, b: vb}
}

func (n *semverConstNode) eval(s *state) any {
	a, ok := semverArg(n.a.eval(s))
	if !ok {
		return nil
	}
	va, ok := parseSemver(a)
	if !ok {
		return nil
	}
	return semverOp(va, n.op, n.b)
}
