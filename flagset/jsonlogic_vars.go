package flagset

// Reading the caller's data: var (static and computed paths, $flagd
// properties), missing and missing_some.

import (
	"fmt"
	"strings"
)

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
