package flagset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Limits on input documents. They keep a hostile or broken input from exhausting
// memory or the stack of any reader (Go or Python).
const (
	// MaxDocumentSize is the largest document Parse accepts, in bytes.
	MaxDocumentSize = 64 << 20
	// MaxDepth is the deepest nesting of objects/arrays Parse accepts; the
	// top-level object is depth 1.
	MaxDepth = 64
)

// Parse decodes a JSON or YAML document with size and depth limits. The first
// non-space byte decides: '{' means JSON, anything else YAML. Parse rejects
// invalid UTF-8, YAML non-string keys and YAML alias expansion beyond the input
// size. Fields of the wrong type or unknown fields are not Parse errors: they are
// kept as problems that Validate/Compile report, so a single bad flag never
// hides the others.
//
// Flags of one JSON document whose variants objects are written identically (and
// hold only booleans, strings and numbers) share one Variants map: treat a
// parsed document's Variants as read-only.
func Parse(data []byte) (*Document, error) {
	if len(data) > MaxDocumentSize {
		return nil, fmt.Errorf("flagset: document is %d bytes, larger than the limit of %d bytes (64 MiB)", len(data), MaxDocumentSize)
	}
	if !utf8.Valid(data) {
		return nil, errors.New("flagset: document is not valid UTF-8")
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	var root any
	if len(trimmed) > 0 && trimmed[0] == '{' {
		doc, err := decodeJSONDocument(trimmed)
		if errors.Is(err, errTooDeep) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("flagset: invalid JSON: %w", err)
		}
		return doc, nil
	} else {
		v, err := decodeYAML(data)
		if err != nil {
			return nil, err
		}
		root = v
	}
	obj, ok := root.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("flagset: document must be an object, got %s", typeName(root))
	}
	return documentFromMap(obj, nil), nil
}

// CheckJSONDepth reports an error when JSON text nests objects/arrays deeper than
// MaxDepth. Every JSON input of flagsync (documents, eval case lines) is held to
// this one limit, so a Go and a Python reader accept and reject the same inputs
// whatever their stacks allow.
func CheckJSONDepth(data []byte) error { return checkJSONDepth(data) }

// checkJSONDepth scans JSON text for nesting deeper than MaxDepth without
// decoding it, so a deeply nested input fails fast with a clear error.
func checkJSONDepth(data []byte) error {
	depth := 0
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > MaxDepth {
				return fmt.Errorf("flagset: document nesting is deeper than the limit of %d levels", MaxDepth)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// decodeYAML decodes YAML into the same shapes encoding/json produces
// (map[string]any, []any, float64, string, bool, nil).
func decodeYAML(data []byte) (any, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return nil, fmt.Errorf("flagset: invalid YAML: %w", err)
	}
	if n.Kind == 0 {
		return nil, errors.New("flagset: document is empty")
	}
	c := yamlConverter{budget: len(data) + 64}
	return c.convert(&n, 0)
}

type yamlConverter struct {
	budget int // nodes that may still be produced; aliases count every time they expand
}

func (c *yamlConverter) convert(n *yaml.Node, depth int) (any, error) {
	c.budget--
	if c.budget < 0 {
		return nil, errors.New("flagset: YAML aliases expand to more data than the document size allows")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, errors.New("flagset: document is empty")
		}
		return c.convert(n.Content[0], depth)
	case yaml.AliasNode:
		return c.convert(n.Alias, depth)
	case yaml.MappingNode:
		if depth+1 > MaxDepth {
			return nil, fmt.Errorf("flagset: document nesting is deeper than the limit of %d levels (line %d)", MaxDepth, n.Line)
		}
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.AliasNode {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
				if k.Tag == "!!merge" {
					return nil, fmt.Errorf("flagset: YAML merge keys (<<) are not supported (line %d)", k.Line)
				}
				return nil, fmt.Errorf("flagset: YAML map key at line %d is not a string (quote it): %q", k.Line, k.Value)
			}
			v, err := c.convert(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		if depth+1 > MaxDepth {
			return nil, fmt.Errorf("flagset: document nesting is deeper than the limit of %d levels (line %d)", MaxDepth, n.Line)
		}
		a := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			v, err := c.convert(e, depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		return a, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, fmt.Errorf("flagset: YAML line %d: %w", n.Line, err)
			}
			return b, nil
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				// Integers beyond float64's exact range still decode as a float.
				g, perr := strconv.ParseFloat(n.Value, 64)
				if perr != nil {
					return nil, fmt.Errorf("flagset: YAML line %d: number %q: %w", n.Line, n.Value, err)
				}
				f = g
			}
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("flagset: YAML line %d: %q is not a finite number (JSON has no NaN/Infinity)", n.Line, n.Value)
			}
			return f, nil
		default: // !!str, !!timestamp, !!binary, custom tags: keep the text as written
			return n.Value, nil
		}
	}
	return nil, fmt.Errorf("flagset: YAML line %d: unsupported node", n.Line)
}

// documentFromMap converts a decoded object into a Document. Fields of the
// wrong type and unknown fields become problems stored on the Document/Flag.
//
// flags, when not nil, are the flags already decoded (the JSON fast path).
func documentFromMap(obj map[string]any, flags map[string]*Flag) *Document {
	d := &Document{Flags: flags}
	for _, k := range sortedKeys(obj) {
		v := obj[k]
		switch k {
		case "$schema":
			s, ok := v.(string)
			if !ok && v != nil {
				d.problems = append(d.problems, Problem{Path: "$schema", Message: "must be a string, got " + typeName(v)})
			}
			d.Schema = s
		case "flags":
			m, ok := v.(map[string]any)
			if !ok {
				d.problems = append(d.problems, Problem{Path: "flags", Message: "must be an object, got " + typeName(v)})
				continue
			}
			d.Flags = make(map[string]*Flag, len(m))
			for key, fv := range m {
				d.Flags[key] = flagFromValue(fv)
			}
		case "$evaluators":
			m, ok := v.(map[string]any)
			if !ok {
				if v != nil {
					d.problems = append(d.problems, Problem{Path: "$evaluators", Message: "must be an object, got " + typeName(v)})
				}
				continue
			}
			d.Evaluators = make(map[string]json.RawMessage, len(m))
			for name, ev := range m {
				raw, err := CanonicalValue(ev)
				if err != nil { // cannot happen for decoded JSON/YAML values
					d.problems = append(d.problems, Problem{Path: "$evaluators." + name, Message: err.Error()})
					continue
				}
				d.Evaluators[name] = raw
			}
		case "metadata":
			m, ok := v.(map[string]any)
			if !ok {
				if v != nil {
					d.problems = append(d.problems, Problem{Path: "metadata", Message: "must be an object, got " + typeName(v)})
				}
				continue
			}
			d.Metadata = m
		default:
			d.problems = append(d.problems, Problem{Path: k, Message: "unknown top-level field"})
		}
	}
	if _, ok := obj["flags"]; !ok && flags == nil {
		d.problems = append(d.problems, Problem{Path: "flags", Message: "required"})
	}
	return d
}

// flagFromValue converts one decoded flag; see documentFromMap.
func flagFromValue(v any) *Flag {
	f := &Flag{}
	m, ok := v.(map[string]any)
	if !ok {
		f.addProblem(flagProblem{"", "must be an object, got " + typeName(v)})
		f.decode.notObject = true
		return f
	}
	var unknown []string
	for k, fv := range m {
		if !f.setField(k, fv) {
			unknown = append(unknown, k)
		}
	}
	f.finishDecode(unknown)
	return f
}

// setField stores one decoded field of a flag, recording a problem when its
// type is wrong; it returns false for an unknown field name.
func (f *Flag) setField(k string, fv any) bool {
	switch k {
	case "state":
		s, ok := fv.(string)
		if !ok {
			f.addProblem(flagProblem{"state", "must be a string (ENABLED or DISABLED), got " + typeName(fv)})
			return true
		}
		f.State = State(s)
	case "variants":
		vm, ok := fv.(map[string]any)
		if !ok {
			f.addProblem(flagProblem{"variants", "must be an object, got " + typeName(fv)})
			return true
		}
		f.Variants = vm
	case "defaultVariant":
		switch dv := fv.(type) {
		case nil:
		case string:
			f.DefaultVariant = &dv
		default:
			f.addProblem(flagProblem{"defaultVariant", "must be a string or null, got " + typeName(fv)})
		}
	case "targeting":
		if fv == nil {
			return true
		}
		raw, err := CanonicalValue(fv)
		if err != nil { // cannot happen for decoded JSON/YAML values
			f.addProblem(flagProblem{"targeting", err.Error()})
			return true
		}
		f.Targeting = raw
		f.targetingAt, f.targetingLen = &raw[0], len(raw)
	case "metadata":
		mm, ok := fv.(map[string]any)
		if !ok {
			if fv != nil {
				f.addProblem(flagProblem{"metadata", "must be an object, got " + typeName(fv)})
			}
			return true
		}
		f.Metadata = mm
	default:
		return false
	}
	return true
}

// finishDecode orders the decoding problems by field, whatever the input order
// was, and adds the unknown fields.
func (f *Flag) finishDecode(unknown []string) {
	if ps := f.decodeProblems(); len(ps) > 1 {
		sort.Slice(ps, func(i, j int) bool { return ps[i].field < ps[j].field })
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		f.addProblem(flagProblem{"", fmt.Sprintf("unknown field %q", k)})
	}
}

// flagDecode is what Parse found wrong with a flag.
type flagDecode struct {
	problems  []flagProblem
	notObject bool // the document's value for this flag was not an object
}

func (f *Flag) addProblem(p flagProblem) {
	if f.decode == nil {
		f.decode = &flagDecode{}
	}
	f.decode.problems = append(f.decode.problems, p)
}

// decodeProblems returns the decoding problems (nil: none).
func (f *Flag) decodeProblems() []flagProblem {
	if f.decode == nil {
		return nil
	}
	return f.decode.problems
}

// flagProblem is a decoding problem of one flag; field "" means the flag itself.
type flagProblem struct {
	field   string
	message string
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	if len(keys) > 1 {
		slices.Sort(keys)
	}
	return keys
}

// typeName names a decoded JSON value's type for messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, json.Number:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
