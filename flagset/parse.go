package flagset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
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
	doc, _, err := parse(data, nil)
	return doc, err
}

// parse is Parse, also returning the flags a JSON document shares with prev
// (see Reload); prev may be nil.
func parse(data []byte, prev *Set) (*Document, map[string]*compiledFlag, error) {
	if len(data) > MaxDocumentSize {
		return nil, nil, fmt.Errorf("flagset: document is %d bytes, larger than the limit of %d bytes (64 MiB)", len(data), MaxDocumentSize)
	}
	if !utf8.Valid(data) {
		return nil, nil, errors.New("flagset: document is not valid UTF-8")
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	var root any
	if len(trimmed) > 0 && trimmed[0] == '{' {
		doc, reused, err := decodeJSONDocument(trimmed, prev)
		if errors.Is(err, errTooDeep) {
			return nil, nil, err
		}
		if err != nil {
			return nil, nil, fmt.Errorf("flagset: invalid JSON: %w", err)
		}
		return doc, reused, nil
	} else {
		v, err := decodeYAML(data)
		if err != nil {
			return nil, nil, err
		}
		root = v
	}
	obj, ok := root.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("flagset: document must be an object, got %s", typeName(root))
	}
	return documentFromMap(obj, nil), nil, nil
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
// (map[string]any, []any, float64, string, bool, nil), by the rules of the YAML
// subset in docs/FORMAT.md: scalars are resolved by the YAML 1.2 core schema (by us,
// not by the YAML library, so the Python reader resolves them identically), only the
// core tags are understood, map keys are strings, merge keys are rejected.
func decodeYAML(data []byte) (any, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(acceptYAML12(data), &n); err != nil {
		return nil, fmt.Errorf("flagset: invalid YAML: %w", err)
	}
	if n.Kind == 0 {
		return nil, errors.New("flagset: document is empty")
	}
	c := yamlConverter{budget: len(data) + 64}
	return c.convert(&n, 0)
}

// yaml12Directive is a "%YAML 1.2" directive line.
var yaml12Directive = regexp.MustCompile(`^%YAML[ \t]+1\.2([ \t#\r]|$)`)

// acceptYAML12 lets the first document declare "%YAML 1.2": the YAML library accepts
// only "%YAML 1.1" (libyaml, which the Python reader uses, accepts both). The
// directive changes nothing else for the parser, so it is read as 1.1; the text
// keeps its length, so error line numbers stay right.
func acceptYAML12(data []byte) []byte {
	rest := bytes.TrimPrefix(data, []byte("\ufeff"))
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i]
		}
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' && t[0] != '%' {
			break // directives and comments only come before the document
		}
		if yaml12Directive.Match(line) {
			at := len(data) - len(rest) + bytes.Index(line, []byte("1.2"))
			out := bytes.Clone(data)
			out[at+2] = '1'
			return out
		}
		rest = rest[len(line):]
		if len(rest) > 0 {
			rest = rest[1:]
		}
	}
	return data
}

type yamlConverter struct {
	budget int // nodes that may still be produced; aliases count every time they expand
}

// quotedStyles are the scalar styles that make an untagged scalar a string whatever it reads.
const quotedStyles = yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle

// explicitTag returns a node's explicit tag ("" when it has none). The YAML library
// treats the non-specific tag "!" as no tag; so do we.
func explicitTag(n *yaml.Node) string {
	if n.Style&yaml.TaggedStyle == 0 {
		return ""
	}
	return n.Tag
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
		if tag := explicitTag(n); tag != "" && tag != "!!map" {
			return nil, fmt.Errorf("flagset: YAML line %d: tag %s is not supported on a mapping", n.Line, tag)
		}
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, err := yamlKey(n.Content[i])
			if err != nil {
				return nil, err
			}
			v, err := c.convert(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			m[key] = v
		}
		return m, nil
	case yaml.SequenceNode:
		if depth+1 > MaxDepth {
			return nil, fmt.Errorf("flagset: document nesting is deeper than the limit of %d levels (line %d)", MaxDepth, n.Line)
		}
		if tag := explicitTag(n); tag != "" && tag != "!!seq" {
			return nil, fmt.Errorf("flagset: YAML line %d: tag %s is not supported on a sequence", n.Line, tag)
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
		return yamlScalar(n)
	}
	return nil, fmt.Errorf("flagset: YAML line %d: unsupported node", n.Line)
}

// yamlKey reads a mapping key, which must be a scalar that resolves to a string.
func yamlKey(k *yaml.Node) (string, error) {
	if k.Kind == yaml.AliasNode {
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("flagset: YAML map key at line %d is not a string", k.Line)
	}
	if explicitTag(k) == "" && k.Style&quotedStyles == 0 && k.Value == "<<" {
		return "", fmt.Errorf("flagset: YAML merge keys (<<) are not supported (line %d)", k.Line)
	}
	v, err := yamlScalar(k)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("flagset: YAML map key at line %d is not a string (quote it): %q", k.Line, k.Value)
	}
	return s, nil
}

// yamlScalar resolves a scalar: an explicit core tag says what it must be, a quoted
// or block scalar is a string, a plain scalar is resolved by the core schema.
func yamlScalar(n *yaml.Node) (any, error) {
	kind, ok := coreKind(explicitTag(n))
	if !ok {
		return nil, fmt.Errorf("flagset: YAML line %d: tag %s is not supported (use !!str, !!int, !!float, !!bool or !!null)", n.Line, n.Tag)
	}
	if kind == "" && n.Style&quotedStyles != 0 {
		return n.Value, nil
	}
	v, err := resolveYAMLScalar(n.Value, kind)
	if err != nil {
		return nil, fmt.Errorf("flagset: YAML line %d: %w", n.Line, err)
	}
	return v, nil
}

// coreKind maps an explicit tag to the kind resolveYAMLScalar takes; ok is false for
// tags outside the core schema.
func coreKind(tag string) (kind string, ok bool) {
	switch tag {
	case "":
		return "", true
	case "!!str", "!!null", "!!bool", "!!int", "!!float":
		return tag[2:], true
	}
	return "", false
}

// resolveYAMLScalar resolves the text of a plain YAML scalar by the YAML 1.2 core
// schema (kind "") or checks it against one core tag (kind "str", "null", "bool",
// "int" or "float"): null is ~, null, Null, NULL or empty; booleans are
// true/True/TRUE/false/False/FALSE; integers are [-+]?[0-9]+, 0o[0-7]+ and
// 0x[0-9a-fA-F]+; floats [-+]?(.[0-9]+|[0-9]+(.[0-9]*)?)([eE][-+]?[0-9]+)?.
// Numbers become float64 (correctly rounded); one beyond the double range, and
// .inf/.nan, are errors (JSON has no such numbers). Anything else is a string.
// The Python reader implements the same function (flagset.py).
func resolveYAMLScalar(text, kind string) (any, error) {
	if kind == "str" {
		return text, nil
	}
	if kind == "" || kind == "null" {
		switch text {
		case "", "~", "null", "Null", "NULL":
			return nil, nil
		}
	}
	if kind == "" || kind == "bool" {
		switch text {
		case "true", "True", "TRUE":
			return true, nil
		case "false", "False", "FALSE":
			return false, nil
		}
	}
	if kind == "" || kind == "int" || kind == "float" {
		if f, isInt, err := yamlInt(text); isInt {
			return f, err
		}
	}
	if kind == "" || kind == "float" {
		if yamlFloat.MatchString(text) {
			f, err := strconv.ParseFloat(text, 64)
			if err != nil || math.IsInf(f, 0) {
				return nil, fmt.Errorf("%q is beyond the double range", text)
			}
			return f, nil
		}
		if yamlNonFinite.MatchString(text) {
			return nil, fmt.Errorf("%q is not a finite number (JSON has no NaN/Infinity)", text)
		}
	}
	if kind == "" {
		return text, nil
	}
	return nil, fmt.Errorf("%q is not a valid !!%s", text, kind)
}

var (
	yamlFloat     = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)
	yamlNonFinite = regexp.MustCompile(`^([-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$`)
)

// yamlInt reads a core-schema integer; isInt is false when text is not one.
func yamlInt(text string) (f float64, isInt bool, err error) {
	digits, base := text, 10
	switch {
	case strings.HasPrefix(text, "0x"):
		digits, base = text[2:], 16
	case strings.HasPrefix(text, "0o"):
		digits, base = text[2:], 8
	default:
		digits = strings.TrimLeft(text, "+-")
		if len(text)-len(digits) > 1 {
			return 0, false, nil
		}
	}
	if digits == "" {
		return 0, false, nil
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		ok := c >= '0' && c <= '9'
		if base == 8 {
			ok = c >= '0' && c <= '7'
		} else if base == 16 {
			ok = ok || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
		}
		if !ok {
			return 0, false, nil
		}
	}
	if base == 10 {
		f, _ = strconv.ParseFloat(text, 64) // decimal digits: fails only beyond the range (±Inf)
	} else {
		i, _ := new(big.Int).SetString(digits, base)
		f, _ = new(big.Float).SetInt(i).Float64()
	}
	if math.IsInf(f, 0) {
		return 0, true, fmt.Errorf("%q is beyond the double range", text)
	}
	return f, true, nil
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
		f.parsed.notObject = true
		return f
	}
	var unknown []string
	for k, fv := range m {
		if !f.setField(k, fv, 0) {
			unknown = append(unknown, k)
		}
	}
	f.finishDecode(unknown)
	return f
}

// setField stores one decoded field of a flag, recording a problem when its
// type is wrong; it returns false for an unknown field name. textLen is the
// length of the field's JSON text, 0 when unknown.
func (f *Flag) setField(k string, fv any, textLen int) bool {
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
		var buf bytes.Buffer
		buf.Grow(max(textLen, 64)) // the canonical text is about as long as the source's
		err := writeValue(&buf, fv, 0)
		raw := buf.Bytes()
		if err != nil { // cannot happen for decoded JSON/YAML values
			f.addProblem(flagProblem{"targeting", err.Error()})
			return true
		}
		f.Targeting = raw
		p := f.parsedInfo()
		p.targetingAt, p.targetingLen, p.rule = &raw[0], len(raw), fv
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

// parsedFlag is what Parse knows about a flag beyond its public fields. It
// stays out of Flag's exported API and out of the Set: Compile reads it once.
type parsedFlag struct {
	problems  []flagProblem // what Parse found wrong with the flag, by field
	notObject bool          // the document's value for this flag was not an object

	// targetingAt and targetingLen locate the canonical targeting Parse wrote,
	// and rule is the decoded value it wrote it from: while Targeting is still
	// that slice, Compile compiles rule without decoding the text again, and
	// the canonical encoding copies the text as is.
	targetingAt  *byte
	targetingLen int
	rule         any
}

// parsedInfo returns f's parse information, creating it.
func (f *Flag) parsedInfo() *parsedFlag {
	if f.parsed == nil {
		f.parsed = &parsedFlag{}
	}
	return f.parsed
}

func (f *Flag) addProblem(p flagProblem) {
	pf := f.parsedInfo()
	pf.problems = append(pf.problems, p)
}

// decodeProblems returns the decoding problems (nil: none).
func (f *Flag) decodeProblems() []flagProblem {
	if f.parsed == nil {
		return nil
	}
	return f.parsed.problems
}

// notObject tells whether Parse found a non-object where the flag should be.
func (f *Flag) notObject() bool { return f.parsed != nil && f.parsed.notObject }

// parsedRule returns the decoded targeting Parse wrote Targeting from, while
// Targeting is still those bytes.
func (f *Flag) parsedRule() (any, bool) {
	if !f.canonicalTargeting() {
		return nil, false
	}
	return f.parsed.rule, true
}

// canonicalTargeting tells whether Targeting is still the canonical slice Parse
// produced for it.
func (f *Flag) canonicalTargeting() bool {
	t := f.Targeting
	return f.parsed != nil && len(t) > 0 && len(t) == f.parsed.targetingLen && &t[0] == f.parsed.targetingAt
}

// flagProblem is a decoding problem of one flag; field "" means the flag itself.
type flagProblem struct {
	field   string
	message string
}

// sortedFlags returns the flag keys, sorted, and their flags in the same order.
func sortedFlags(m map[string]*Flag) ([]string, []*Flag) {
	type entry struct {
		key  string
		flag *Flag
	}
	entries := make([]entry, 0, len(m))
	for k, f := range m {
		entries = append(entries, entry{k, f})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	keys, flags := make([]string, len(entries)), make([]*Flag, len(entries))
	for i, e := range entries {
		keys[i], flags[i] = e.key, e.flag
	}
	return keys, flags
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
	case map[string]any, ruleOp:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
