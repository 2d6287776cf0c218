package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// The generator builds documents and case lines as trees of these values, so the
// renderers can choose spellings (key order, escapes, YAML styles) the reader must
// normalise. Plain Go values: nil, bool, float64, string, []any, obj.
type (
	// obj is an object with its members in writing order; a repeated key is kept
	// (readers must keep the last value).
	obj []member
	// member is one key/value pair of an obj.
	member struct {
		key string
		val any
	}
	// rawJSON is text written as is into a JSON rendering (lone surrogate escapes,
	// numbers beyond the double range); the YAML renderer writes alt instead.
	rawJSON struct{ text, alt string }
	// rawYAML is a scalar written as is into a YAML rendering (plain scalars at the
	// edge of the core schema, tags, aliases); the JSON renderer writes alt.
	rawYAML struct {
		text string
		alt  any
	}
	// deep is a value nested n levels deep (objects or arrays), built at render time
	// so a 600-level chain does not cost a tree of 600 nodes while generating.
	deep struct {
		n      int
		arrays bool
	}
)

// gen holds the random source of one document and its cases.
type gen struct {
	r       *rand.Rand
	yaml    bool     // the document is rendered as YAML
	anchors []string // YAML anchors written so far (aliases may refer to them)
}

func (g *gen) pick(n int) int             { return g.r.IntN(n) }
func (g *gen) chance(p float64) bool      { return g.r.Float64() < p }
func oneOf[T any](g *gen, xs ...T) T      { return xs[g.pick(len(xs))] }
func (g *gen) between(lo, hi int) int     { return lo + g.pick(hi-lo+1) }
func (o obj) with(k string, v any) obj    { return append(o, member{k, v}) }
func (g *gen) maybe(p float64, v any) any { return map[bool]any{true: v, false: nil}[g.chance(p)] }

// Edge numbers: signed zero, integers around 2^53 and 2^63, the double extremes,
// values whose ECMAScript formatting switches notation.
var edgeNumbers = []float64{
	0, math.Copysign(0, -1), 1, -1, 2, 3, 7, 10, 0.1, 0.5, -0.5, 1.5, 2.5, 100, 1e21, 1e-7, 1e-6, 123e-20,
	1 << 53, 1<<53 + 2, -(1 << 53), 1 << 62, 1 << 63, -(1 << 63), 9007199254740993,
	math.MaxFloat64, math.SmallestNonzeroFloat64, 4.35, 0.000001, 123456789012345678, 1.7976931348623157e308,
	2147483647, 2147483648, 4294967295,
}

// Edge strings: empty, numeric-looking, JS whitespace, non-BMP, letters newer than
// older Unicode tables (U+11F04), controls, semver-looking, YAML-special words.
var edgeStrings = []string{
	"", "0", "1", "-1", " 1 ", "1e3", "0x10", "0b1", "1_000", ".5", "5.", "Infinity", "-Infinity", "NaN",
	"true", "false", "null", "on", "off", "yes", "no", "~", "a", "abc", "é", "日本", "😀", "\u2028", "\u00a0 2 ",
	"\U00011F04", "\u0000", "\t\n", "a.b", "list.0", "$flagd", "$flagd.flagKey", "x@example.com", "@example.com",
	"v1.2.3", "1.2.3", "1.2.3-rc.1", "1.2.3-rc.1+b5", "1.2", "2", "01.2.3", "1.2.3-01", "V2.0.0", "=", "<<",
	"._5", "1e400", "u1", "u2", "on", "[object Object]", "\"", "\\", "a\u0301", "ﬁ",
}

// attrs are the context attributes rules read.
var attrs = []string{"a", "b", "n", "s", "v", "list", "obj", "obj.k", "obj.list.1", "email", "targetingKey",
	"missing", "$flagd", "$flagd.flagKey", "$flagd.timestamp", "deep", "", "list.0", "list.01"}

func (g *gen) number() any {
	if g.chance(0.003) {
		// beyond the double range: the document (or case line) is rejected by both
		big := oneOf(g, "1e400", "-1E999", "1"+strings.Repeat("0", 400))
		return rawJSON{text: big, alt: big}
	}
	if g.chance(0.7) {
		return edgeNumbers[g.pick(len(edgeNumbers))]
	}
	switch g.pick(3) {
	case 0:
		return float64(g.between(-5, 20))
	case 1:
		return math.Round(g.r.NormFloat64()*1000) / 100
	}
	return g.r.Float64() * math.Pow(10, float64(g.between(-30, 30)))
}

func (g *gen) str() any {
	if g.chance(0.8) {
		return edgeStrings[g.pick(len(edgeStrings))]
	}
	if g.chance(0.5) {
		// escapes the JSON reader must turn into text: a lone surrogate reads as U+FFFD
		return rawJSON{text: oneOf(g, `"\ud800"`, `"a\udfffb"`, `"\ud83d\ude00"`, `"\u00e9"`, `"\u0000x"`), alt: `"x"`}
	}
	var b strings.Builder
	for i := g.between(1, 6); i > 0; i-- {
		b.WriteRune(oneOf(g, 'a', 'b', 'Z', '0', '.', '-', ' ', 'é', '😀', 'ǅ', '٣', '\U00011F04', '_', '/'))
	}
	return b.String()
}

// scalar is any JSON scalar.
func (g *gen) scalar() any {
	switch g.pick(6) {
	case 0:
		return nil
	case 1:
		return g.chance(0.5)
	case 2, 3:
		return g.number()
	}
	return g.str()
}

// value is any JSON value, at most depth levels of containers.
func (g *gen) value(depth int) any {
	if depth <= 0 || g.chance(0.6) {
		return g.scalar()
	}
	if g.chance(0.5) {
		a := []any{}
		for i := g.pick(4); i > 0; i-- {
			a = append(a, g.value(depth-1))
		}
		return a
	}
	o := obj{}
	for i := g.pick(4); i > 0; i-- {
		o = o.with(oneOf(g, "k", "a", "list", "x", ""), g.value(depth-1))
	}
	return o
}

// The operators of docs/FORMAT.md with the argument counts they accept (-1: any).
var operators = []struct {
	name     string
	min, max int
}{
	{"var", 0, 2}, {"missing", 0, 3}, {"missing_some", 2, 2}, {"if", 0, 5}, {"?:", 3, 3},
	{"==", 2, 2}, {"===", 2, 2}, {"!=", 2, 2}, {"!==", 2, 2}, {"!", 1, 1}, {"!!", 1, 1},
	{"or", 0, 3}, {"and", 0, 3}, {"<", 2, 3}, {"<=", 2, 3}, {">", 2, 2}, {">=", 2, 2},
	{"+", 0, 3}, {"-", 1, 2}, {"*", 1, 3}, {"/", 2, 2}, {"%", 2, 2}, {"min", 0, 3}, {"max", 0, 3},
	{"in", 2, 2}, {"cat", 0, 3}, {"substr", 2, 3}, {"merge", 0, 3},
	{"map", 2, 2}, {"filter", 2, 2}, {"reduce", 2, 3}, {"all", 2, 2}, {"some", 2, 2}, {"none", 2, 2},
	{"starts_with", 2, 2}, {"ends_with", 2, 2}, {"sem_ver", 3, 3}, {"fractional", 1, 4},
}

// rule is a random JsonLogic expression; evaluators are the $ref names in scope.
func (g *gen) rule(depth int, evaluators []string) any {
	if depth <= 0 || g.chance(0.2) {
		if g.chance(0.5) {
			return g.varRef()
		}
		return g.scalar()
	}
	switch {
	case len(evaluators) > 0 && g.chance(0.08):
		return obj{{"$ref", oneOf(g, evaluators...)}}
	case g.chance(0.04):
		return obj{{oneOf(g, "nope", "log", "method", "$ref"), []any{g.scalar()}}} // load problems
	case g.chance(0.08):
		return g.custom(depth, evaluators)
	case g.chance(0.1):
		// iteration operators get an array to walk and a rule on its elements
		op := oneOf(g, "map", "filter", "all", "some", "none", "reduce")
		args := []any{oneOf[any](g, obj{{"var", "list"}}, obj{{"var", "obj.list"}}, g.value(2)), g.rule(depth-1, nil)}
		if op == "reduce" {
			args[1] = obj{{oneOf(g, "+", "cat", "max"), []any{obj{{"var", "current"}}, obj{{"var", "accumulator"}}}}}
			if g.chance(0.7) {
				args = append(args, g.scalar())
			}
		}
		return obj{{op, args}}
	}
	op := operators[g.pick(len(operators))]
	n := op.min + g.pick(op.max-op.min+1)
	if g.chance(0.03) {
		n = op.max + 1 // wrong arity
	}
	args := make([]any, n)
	for i := range args {
		args[i] = g.rule(depth-1, evaluators)
	}
	if n == 1 && g.chance(0.4) {
		return obj{{op.name, args[0]}} // a single argument not in an array
	}
	return obj{{op.name, args}}
}

func (g *gen) varRef() any {
	path := any(oneOf(g, attrs...))
	switch g.pick(8) {
	case 0:
		return obj{{"var", []any{path, g.scalar()}}}
	case 1:
		return obj{{"var", oneOf[any](g, nil, 0.0, 1.0, []any{}, "$flagd")}}
	}
	return obj{{"var", path}}
}

// custom is one of the flagd operators with plausible arguments.
func (g *gen) custom(depth int, evaluators []string) any {
	switch g.pick(4) {
	case 0:
		return obj{{"sem_ver", []any{
			oneOf[any](g, obj{{"var", "v"}}, g.str(), g.rule(depth-1, evaluators)),
			oneOf[any](g, "=", "!=", "<", "<=", ">", ">=", "^", "~", "==", g.scalar()),
			oneOf[any](g, "1.2.3", "v1.2", "2", "1.2.3-rc.1", "1.2.3-rc.10", "01.0.0", g.str()),
		}}}
	case 1:
		args := []any{}
		if g.chance(0.6) {
			args = append(args, oneOf[any](g, obj{{"var", "email"}}, obj{{"var", "missing"}}, obj{{"cat", []any{obj{{"var", "$flagd.flagKey"}}, obj{{"var", "targetingKey"}}}}}, g.scalar()))
		}
		for i := g.between(1, 3); i > 0; i-- {
			e := []any{oneOf[any](g, "on", "off", "a", "", g.scalar())}
			if g.chance(0.8) {
				e = append(e, oneOf[any](g, 1.0, 50.0, 0.0, -1.0, 2.5, 1e10, g.scalar()))
			}
			args = append(args, e)
		}
		return obj{{"fractional", args}}
	}
	return obj{{oneOf(g, "starts_with", "ends_with"), []any{
		oneOf[any](g, obj{{"var", "email"}}, obj{{"var", "s"}}, g.scalar()),
		oneOf[any](g, "@example.com", "x", "", g.scalar()),
	}}}
}

// Flag keys: valid ASCII, Unicode letters of several Unicode versions, and invalid ones.
var flagKeys = []string{"f", "flag-1", "a.b/c:d_e", "é", "日本", "ǅx", "٣", "\U00011F04", "\U00011F04x", "x\U0001E4D0",
	"\U0001E030", "ᲀ", "bad key", "", "x\u0301", "Ⅻ", "x\u200d", "ａ", "\U0001D7CE", "𝒜"}

// document is a random flag document and the keys cases should ask for, with the
// type each flag's variants have.
func (g *gen) document() (obj, []flagRef) {
	doc := obj{}
	var evaluators []string
	if g.chance(0.5) {
		evs := obj{}
		n := g.between(1, 4)
		for i := n; i > 0; i-- {
			evaluators = append(evaluators, fmt.Sprintf("e%d", i))
		}
		for _, name := range evaluators {
			// any evaluator may refer to any other: cycles, chains, shared ones
			evs = evs.with(name, g.rule(3, evaluators))
		}
		if g.chance(0.1) {
			// evaluators doubling each other (d_i = [d_{i-1}, d_{i-1}]) around the size
			// limit, over a valid or an invalid start
			start := oneOf[any](g, obj{{"var", "s"}}, obj{{"nope", 1.0}})
			evs = evs.with("d0", start)
			n := oneOf(g, 5, 16, 17, 40)
			for i := 1; i <= n; i++ {
				prev := obj{{"$ref", fmt.Sprintf("d%d", i-1)}}
				evs = evs.with(fmt.Sprintf("d%d", i), obj{{oneOf(g, "or", "and", "cat"), []any{prev, prev}}})
			}
			evaluators = append(evaluators, fmt.Sprintf("d%d", n))
		}
		if g.chance(0.1) {
			// an evaluator nesting close to the depth limit once inlined
			var deepRule any = obj{{"var", "s"}}
			for i := oneOf(g, 20, 30, 40); i > 0; i-- {
				deepRule = obj{{"!", deepRule}}
			}
			evs = evs.with("n0", deepRule)
			var outer any = obj{{"$ref", "n0"}}
			for i := oneOf(g, 20, 24, 25, 30, 44, 45); i > 0; i-- {
				outer = obj{{"!!", outer}}
			}
			evs = evs.with("n1", outer)
			evaluators = append(evaluators, "n0", "n1")
		}
		if g.chance(0.15) {
			// a long chain of references: c0 -> c1 -> ... -> cN
			n := oneOf(g, 10, 63, 64, 65, 200, 600)
			for i := 0; i < n; i++ {
				evs = evs.with(fmt.Sprintf("c%d", i), obj{{"$ref", fmt.Sprintf("c%d", i+1)}})
			}
			evs = evs.with(fmt.Sprintf("c%d", n), obj{{"var", "s"}})
			evaluators = append(evaluators, "c0")
		}
		doc = doc.with("$evaluators", evs)
	}
	flags := obj{}
	var keys []flagRef
	for i := g.between(1, 6); i > 0; i-- {
		key := fmt.Sprintf("f%d", i)
		if g.chance(0.15) {
			key = oneOf(g, flagKeys...)
		}
		f, typ := g.flag(evaluators)
		keys = append(keys, flagRef{key, typ})
		flags = flags.with(key, f)
	}
	doc = doc.with("flags", flags)
	if g.chance(0.5) {
		doc = doc.with("metadata", obj{{"flagSetId", "diff"}, {"n", g.number()}})
	}
	return doc, keys
}

// flagRef is a flag key and the type of its variants.
type flagRef struct{ key, typ string }

var kindTypes = []string{"boolean", "string", "float", "object", "string"}

func (g *gen) flag(evaluators []string) (obj, string) {
	state := "ENABLED"
	if g.chance(0.15) {
		state = oneOf(g, "DISABLED", "DISABLED", "DISABLED", "enabled")
	}
	f := obj{{"state", state}}
	variants := obj{}
	names := []string{}
	kind := g.pick(4)
	if g.chance(0.05) {
		kind = 4 // mixed types or null: a validation problem
	}
	for i := g.between(1, 4); i > 0; i-- {
		name := oneOf(g, "on", "off", "true", "false", "a", "b", "", "é", "1", "null")
		names = append(names, name)
		var v any
		switch kind {
		case 0:
			v = g.chance(0.5)
		case 1:
			v = g.str()
		case 2:
			v = g.number()
		case 3:
			o := obj{}
			for j := g.pick(3); j > 0; j-- {
				o = o.with(oneOf(g, "k", "x", "list"), g.value(2))
			}
			v = o
		default:
			v = g.scalar() // mixed types or null: a validation problem
		}
		variants = variants.with(name, v)
	}
	f = f.with("variants", variants)
	switch g.pick(6) {
	case 0:
	case 1:
		f = f.with("defaultVariant", nil)
	case 2:
		f = f.with("defaultVariant", "zz")
	default:
		f = f.with("defaultVariant", oneOf(g, names...))
	}
	if g.chance(0.8) {
		t := g.rule(g.between(1, 4), evaluators)
		if g.chance(0.6) {
			// the rule's value becomes a variant name more often through if
			t = obj{{"if", []any{t, oneOf(g, names...), g.maybe(0.5, oneOf(g, names...))}}}
		}
		if g.chance(0.05) {
			t = deep{n: oneOf(g, 60, 64, 70, 340), arrays: g.chance(0.5)}
		}
		f = f.with("targeting", t)
	}
	if g.chance(0.2) {
		f = f.with("metadata", obj{{"owner", "team"}, {oneOf(g, "expiresAt", "x"), oneOf[any](g, "2027-01-01T00:00:00Z", "soon", 1.0)}})
	}
	return f, kindTypes[kind]
}

// caseLine is one eval input line.
func (g *gen) caseLine(keys []flagRef) any {
	ref := flagRef{oneOf(g, "unknown", "F1"), ""}
	if len(keys) > 0 && g.chance(0.85) {
		ref = oneOf(g, keys...)
	}
	typ := oneOf(g, "boolean", "string", "integer", "float", "object")
	if ref.typ != "" && g.chance(0.7) {
		typ = ref.typ
		if typ == "float" && g.chance(0.5) {
			typ = "integer"
		}
	}
	var def any
	switch typ {
	case "boolean":
		def = g.chance(0.5)
	case "string":
		def = g.str()
	case "integer":
		def = float64(g.between(-3, 3))
	case "float":
		def = g.number()
	case "object":
		def = obj{{"k", g.value(2)}}
		if g.chance(0.05) {
			def = obj{{"k", deep{n: oneOf(g, 63, 64, 65, 340), arrays: g.chance(0.5)}}}
		}
	}
	if g.chance(0.05) {
		def = g.value(2) // maybe the wrong type
	}
	ctx := obj{}
	for _, a := range []string{"a", "b", "n", "s", "v", "email", "targetingKey"} {
		if g.chance(0.6) {
			ctx = ctx.with(a, g.scalar())
		}
	}
	if g.chance(0.5) {
		ctx = ctx.with("v", oneOf[any](g, "1.2.3", "v1.2", "1.2.3-rc.1", "2.0.0", "1.10.0", "1.2.3+b"))
	}
	if g.chance(0.5) {
		ctx = ctx.with("list", g.value(2))
		l := []any{}
		for i := g.pick(5); i > 0; i-- {
			l = append(l, g.scalar())
		}
		ctx = ctx.with("list", l)
	}
	if g.chance(0.4) {
		ctx = ctx.with("obj", obj{{"k", g.scalar()}, {"list", []any{g.scalar(), g.scalar()}}})
	}
	if g.chance(0.1) {
		ctx = ctx.with("$flagd", oneOf[any](g, "mine", obj{{"flagKey", "other"}}, 1.0))
	}
	if g.chance(0.04) {
		ctx = ctx.with("deep", deep{n: oneOf(g, 63, 64, 65, 340, 2000), arrays: g.chance(0.5)})
	}
	line := obj{{"flag", ref.key}, {"type", typ}, {"default", def}}
	if g.chance(0.9) {
		line = line.with("context", ctx)
	}
	if g.chance(0.01) {
		line = line.with("context", rawJSON{text: `{"n": 1e400}`})
	}
	return line
}
