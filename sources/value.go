package sources

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/flagsync/flagsync/flagset"
)

// maxExactInteger is the largest integer a float64 (a JSON number) holds exactly.
const maxExactInteger = 1 << 53

// ParseValue interprets one stored value (an SSM parameter, a Consul key, an env var)
// for flag key; origin goes into Overlay.Origin. Exactly one of def and ov is non-nil
// when err is nil. The rules (docs/FORMAT.md, "Overlays"):
//
//   - The value must be one YAML document (JSON is YAML). Text YAML rejects is an
//     error, never a bare string, so a truncated or broken definition can never
//     reach the snapshot as a string flag. The one exception is a single line
//     starting with '#' (a colour such as #2da44e, which YAML reads as a comment):
//     that line is the bare string.
//   - A scalar root is a bare value: true/false, a finite number that a float64
//     holds exactly, or a string (plain, quoted or block). null is an error.
//   - A mapping root with "variants" is a full definition, decoded by flagset.Parse
//     like a flag in a document (its alias expansion is bounded there) and valid on
//     its own (targeting aside, which may use other sources' $evaluators); a mapping
//     without it is a patch (only state and defaultVariant, both strings).
//   - Anything else is an error: a sequence root, more than one document, a
//     document of only comments, and explicit tags (!!binary, !!str ...) anywhere.
//     Anchors and aliases are allowed only inside a full definition.
//
// Errors are "flags.<key>[.field]: message" and never repeat the value (stored
// values may be secrets), so sources.ValueProblem can file them.
func ParseValue(key string, raw []byte, origin Origin) (def *flagset.Flag, ov *Overlay, err error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil, nil, fmt.Errorf("flags.%s: empty value", key)
	}
	if !utf8.Valid(trimmed) {
		return nil, nil, fmt.Errorf("flags.%s: not valid UTF-8", key)
	}
	if trimmed[0] == '#' && !bytes.ContainsAny(trimmed, "\r\n") {
		return nil, &Overlay{Value: string(trimmed), HasValue: true, Origin: origin}, nil
	}
	root, err := decodeOneDocument(trimmed)
	if err != nil {
		return nil, nil, fmt.Errorf("flags.%s: %w", key, err)
	}
	switch root.Kind {
	case yaml.ScalarNode:
		if err := plainNode(root); err != nil {
			return nil, nil, fmt.Errorf("flags.%s: %w", key, err)
		}
		if root.Style == 0 && linesOfContent(trimmed) > 1 {
			// YAML folds a plain scalar's lines into one string: text on several
			// lines is far more likely a mangled structure than a value.
			return nil, nil, fmt.Errorf("flags.%s: a bare string on several lines must be quoted or a block scalar (| or >)", key)
		}
		v, err := bareValue(root)
		if err != nil {
			return nil, nil, fmt.Errorf("flags.%s: %w", key, err)
		}
		return nil, &Overlay{Value: v, HasValue: true, Origin: origin}, nil
	case yaml.MappingNode:
		if hasKey(root, "variants") {
			return parseDefinition(key, root)
		}
		return parsePatch(key, root, origin)
	default:
		return nil, nil, fmt.Errorf("flags.%s: value must be a flag definition, a patch or a scalar, got a YAML sequence", key)
	}
}

// decodeOneDocument parses text as exactly one YAML document and returns its root
// node. Aliases stay unexpanded in the node graph, so this is linear in the text.
func decodeOneDocument(text []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(text))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("holds only YAML comments or document markers, no value")
		}
		return nil, malformed(err)
	}
	var more yaml.Node
	switch err := dec.Decode(&more); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, malformed(err)
	default:
		return nil, errors.New("holds more than one YAML document (a value is one document)")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("holds only YAML comments or document markers, no value")
	}
	return doc.Content[0], nil
}

// linesOfContent counts the lines of text that are not blank, comments or document
// markers.
func linesOfContent(text []byte) int {
	n := 0
	for line := range bytes.Lines(text) {
		l := bytes.TrimSpace(line)
		if len(l) == 0 || l[0] == '#' || string(l) == "---" || string(l) == "..." {
			continue
		}
		n++
	}
	return n
}

func malformed(err error) error {
	return fmt.Errorf("malformed YAML value: %s", strings.TrimPrefix(err.Error(), "yaml: "))
}

// plainNode refuses the YAML features a bare value or a patch field has no use for:
// an explicit tag changes how the text is read (!!binary decodes base64), an anchor
// or alias only makes sense inside a larger structure.
func plainNode(n *yaml.Node) error {
	switch {
	case n.Kind == yaml.AliasNode:
		return fmt.Errorf("YAML alias *%s is not allowed here (only inside a full definition)", n.Value)
	case n.Anchor != "":
		return fmt.Errorf("YAML anchor &%s is not allowed here (only inside a full definition)", n.Anchor)
	case n.Style&yaml.TaggedStyle != 0:
		return fmt.Errorf("YAML tag %s is not allowed (values use plain YAML: no explicit tags)", n.Tag)
	}
	return nil
}

// bareValue reads a scalar root by the YAML 1.2 core schema: bool, number or string.
func bareValue(n *yaml.Node) (any, error) {
	switch n.Tag {
	case "!!null":
		return nil, errors.New("null value")
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, malformed(err)
		}
		return b, nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil || i > maxExactInteger || i < -maxExactInteger {
			return nil, errors.New("number is not exactly representable as a JSON number (at most 2^53 in magnitude)")
		}
		return float64(i), nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, malformed(err)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, errors.New("not a finite number (JSON has no NaN or Infinity)")
		}
		return f, nil
	default:
		// !!str, and !!timestamp, which the core schema reads as a string.
		return n.Value, nil
	}
}

// hasKey tells whether mapping m has the plain string key name.
func hasKey(m *yaml.Node, name string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Tag == "!!str" && k.Value == name {
			return true
		}
	}
	return false
}

// parseDefinition decodes a definition mapping exactly as flagset decodes a flag in a
// document: the node is wrapped as {flags: {key: node}} and handed to flagset.Parse,
// whose YAML decoder bounds alias expansion by the input size.
func parseDefinition(key string, root *yaml.Node) (*flagset.Flag, *Overlay, error) {
	if err := checkDefinition(root, "flags."+key); err != nil {
		return nil, nil, err
	}
	str := func(s string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
	}
	wrapped := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{
		Kind: yaml.MappingNode, Tag: "!!map",
		Content: []*yaml.Node{str("flags"), {Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{str(key), root}}},
	}}}
	text, err := yaml.Marshal(wrapped)
	if err != nil {
		return nil, nil, fmt.Errorf("flags.%s: %w", key, err)
	}
	doc, err := flagset.Parse(text)
	if err != nil {
		return nil, nil, fmt.Errorf("flags.%s: %s", key, strings.TrimPrefix(err.Error(), "flagset: "))
	}
	f := doc.Flags[key]
	if f == nil {
		return nil, nil, fmt.Errorf("flags.%s: null definition", key)
	}
	// A definition replaces the lower-precedence ones whole, so it must be a valid
	// flag on its own: refusing it here makes it a problem that names the stored
	// value's origin. Targeting is left to the daemon, which knows the $evaluators
	// of every source.
	var ps flagset.Problems
	for _, p := range doc.Validate() {
		if !strings.HasPrefix(p.Path, "flags."+key+".targeting") {
			ps = append(ps, p)
		}
	}
	switch len(ps) {
	case 0:
		return f, nil, nil
	case 1:
		return nil, nil, ps[0]
	default:
		return nil, nil, fmt.Errorf("%w (and %d more problems)", ps[0], len(ps)-1)
	}
}

// checkDefinition refuses explicit tags and repeated mapping keys anywhere in a
// definition, naming the field. Aliases are not followed: the node they point to is
// checked where it is defined, so the walk is linear in the text.
func checkDefinition(n *yaml.Node, path string) error {
	if n.Kind != yaml.AliasNode && n.Style&yaml.TaggedStyle != 0 {
		return fmt.Errorf("%s: YAML tag %s is not allowed (values use plain YAML: no explicit tags)", path, n.Tag)
	}
	switch n.Kind {
	case yaml.MappingNode:
		if err := uniqueKeys(n, path); err != nil {
			return err
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkDefinition(n.Content[i], path); err != nil {
				return err
			}
			if err := checkDefinition(n.Content[i+1], path+"."+n.Content[i].Value); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := checkDefinition(c, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// uniqueKeys refuses a mapping that repeats a key: which one wins is a guess.
func uniqueKeys(m *yaml.Node, path string) error {
	seen := make(map[string]bool, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if k.Kind != yaml.ScalarNode {
			continue // flagset reports non-string keys
		}
		if seen[k.Value] {
			return fmt.Errorf("%s.%s: key repeated in a mapping (line %d)", path, k.Value, k.Line)
		}
		seen[k.Value] = true
	}
	return nil
}

// parsePatch reads a mapping without variants: state and/or defaultVariant, strings.
func parsePatch(key string, m *yaml.Node, origin Origin) (*flagset.Flag, *Overlay, error) {
	if err := uniqueKeys(m, "flags."+key); err != nil {
		return nil, nil, err
	}
	ov := &Overlay{Origin: origin}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if err := plainNode(k); err != nil || k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
			return nil, nil, fmt.Errorf("flags.%s: a patch's keys are the field names state and defaultVariant", key)
		}
		field := k.Value
		path := "flags." + key + "." + field
		if field != "state" && field != "defaultVariant" {
			return nil, nil, fmt.Errorf("%s: unknown field in a patch (a patch may set state and defaultVariant; a full definition needs variants)", path)
		}
		if err := plainNode(v); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		isString := v.Kind == yaml.ScalarNode && v.Tag == "!!str"
		switch field {
		case "state":
			if !isString || (flagset.State(v.Value) != flagset.Enabled && flagset.State(v.Value) != flagset.Disabled) {
				// The value is not repeated: stored values may be secrets.
				return nil, nil, fmt.Errorf("%s: must be ENABLED or DISABLED", path)
			}
			st := flagset.State(v.Value)
			ov.State = &st
		case "defaultVariant":
			if !isString {
				return nil, nil, fmt.Errorf("%s: must be a variant name (a string)", path)
			}
			s := v.Value
			ov.DefaultVariant = &s
		}
	}
	if ov.State == nil && ov.DefaultVariant == nil {
		return nil, nil, fmt.Errorf("flags.%s: empty patch", key)
	}
	return nil, ov, nil
}
