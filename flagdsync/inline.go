package flagdsync

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/flagsync/flagsync/flagset"
)

// inlinedGrowthLimit caps the rules with $refs inlined at this many times the JSON values of
// the snapshot (at least inlinedMinLimit values): evaluators used many times over, nested,
// could otherwise multiply it. The cap is checked before anything is encoded.
const (
	inlinedGrowthLimit = 8
	inlinedMinLimit    = 1 << 20
)

// inlineEvaluators returns the canonical snapshot doc with every {"$ref": name} in a flag's
// targeting replaced by that $evaluators entry (its own $refs inlined too), and without
// $evaluators. flagd clients resolve $ref themselves, each its own way: the Java provider
// (0.11.x) substitutes evaluator text with a regular expression, so an evaluator that
// contains a "$" (a nested $ref, a $flagd.* var) makes it reject the whole payload; flagd's
// Go evaluator resolves nested $refs only in some map orders. With the rules inlined, as
// flagset compiles them, every client evaluates the same rules. The daemon never publishes a
// flag whose rule references a missing or cyclic evaluator; such a $ref is left as it is.
func inlineEvaluators(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("inline $evaluators: %w", err)
	}
	evaluators, _ := root["$evaluators"].(map[string]any)
	if len(evaluators) == 0 {
		return doc, nil
	}
	limit := max(inlinedGrowthLimit*values(root), inlinedMinLimit)
	in := &inliner{evaluators: evaluators, done: map[string]inlined{}, active: map[string]bool{}}
	flags, _ := root["flags"].(map[string]any)
	total := 0
	for _, f := range flags {
		if flag, ok := f.(map[string]any); ok {
			if rule, ok := flag["targeting"]; ok {
				r := in.inline(rule)
				flag["targeting"] = r.rule
				if total = min(total+r.values, limit+1); total > limit {
					return nil, fmt.Errorf("inline $evaluators: the inlined rules hold over %d JSON values", limit)
				}
			}
		}
	}
	delete(root, "$evaluators")
	out, err := flagset.CanonicalValue(root)
	if err != nil {
		return nil, fmt.Errorf("inline $evaluators: %w", err)
	}
	return out, nil
}

// values counts the JSON values in v.
func values(v any) int {
	n := 1
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			n += values(e)
		}
	case []any:
		for _, e := range x {
			n += values(e)
		}
	}
	return n
}

// inlined is a rule with its $refs inlined and the number of JSON values it then holds
// (shared evaluators are counted at every use; saturated so it cannot overflow).
type inlined struct {
	rule   any
	values int
}

const saturated = 1 << 40

// inliner resolves $refs once per evaluator; active guards against cycles.
type inliner struct {
	evaluators map[string]any
	done       map[string]inlined
	active     map[string]bool
}

func (in *inliner) inline(v any) inlined {
	switch x := v.(type) {
	case map[string]any:
		if name, ok := refName(x); ok {
			if r, ok := in.evaluator(name); ok {
				return r
			}
			return inlined{x, values(x)}
		}
		out, n := make(map[string]any, len(x)), 1
		for k, e := range x {
			r := in.inline(e)
			out[k], n = r.rule, min(n+r.values, saturated)
		}
		return inlined{out, n}
	case []any:
		out, n := make([]any, len(x)), 1
		for i, e := range x {
			r := in.inline(e)
			out[i], n = r.rule, min(n+r.values, saturated)
		}
		return inlined{out, n}
	}
	return inlined{v, 1}
}

func (in *inliner) evaluator(name string) (inlined, bool) {
	if r, ok := in.done[name]; ok {
		return r, true
	}
	raw, ok := in.evaluators[name]
	if !ok || in.active[name] {
		return inlined{}, false
	}
	in.active[name] = true
	r := in.inline(raw)
	delete(in.active, name)
	in.done[name] = r
	return r, true
}

// refName reports whether m is {"$ref": "<name>"}.
func refName(m map[string]any) (string, bool) {
	if len(m) != 1 {
		return "", false
	}
	name, ok := m["$ref"].(string)
	return name, ok
}
