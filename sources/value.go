package sources

import (
	"bytes"
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/flagsync/flagsync/flagset"
)

// ParseValue interprets one stored value (an SSM parameter, a Consul key, an env var)
// for flag key. A mapping with "variants" is a full definition; a mapping with only
// "state" and/or "defaultVariant" is a patch; a scalar is a bare value. JSON and YAML
// are both accepted; text that is neither is taken as a bare string. Exactly one of
// def and ov is non-nil when err is nil. origin goes into Overlay.Origin.
func ParseValue(key string, raw []byte, origin string) (def *flagset.Flag, ov *Overlay, err error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil, nil, fmt.Errorf("flags.%s: empty value", key)
	}
	var decoded any
	if yerr := yaml.Unmarshal(trimmed, &decoded); yerr != nil {
		if trimmed[0] == '{' || trimmed[0] == '[' {
			return nil, nil, fmt.Errorf("flags.%s: malformed JSON/YAML value: %v", key, yerr)
		}
		decoded = string(trimmed)
	}
	switch v := decoded.(type) {
	case bool, string:
		return nil, &Overlay{Value: v, HasValue: true, Origin: origin}, nil
	case int:
		return nil, &Overlay{Value: float64(v), HasValue: true, Origin: origin}, nil
	case float64:
		return nil, &Overlay{Value: v, HasValue: true, Origin: origin}, nil
	case map[string]any:
		if _, ok := v["variants"]; ok {
			return parseDefinition(key, v)
		}
		return parsePatch(key, v, origin)
	case nil:
		if !isYAMLNull(trimmed) {
			// Text YAML reads as nothing, e.g. "#2da44e" (a comment): a bare string.
			return nil, &Overlay{Value: string(trimmed), HasValue: true, Origin: origin}, nil
		}
		return nil, nil, fmt.Errorf("flags.%s: null value", key)
	default:
		return nil, nil, fmt.Errorf("flags.%s: value must be a flag definition, a patch or a scalar, got %T", key, decoded)
	}
}

func parseDefinition(key string, m map[string]any) (*flagset.Flag, *Overlay, error) {
	// Round-trip through JSON so the definition decodes exactly like a document does.
	buf, err := json.Marshal(m)
	if err != nil {
		return nil, nil, fmt.Errorf("flags.%s: %w", key, err)
	}
	doc, err := flagset.Parse([]byte(`{"flags":{` + mustJSONString(key) + `:` + string(buf) + `}}`))
	if err != nil {
		return nil, nil, fmt.Errorf("flags.%s: %w", key, err)
	}
	return doc.Flags[key], nil, nil
}

func parsePatch(key string, m map[string]any, origin string) (*flagset.Flag, *Overlay, error) {
	ov := &Overlay{Origin: origin}
	for field, val := range m {
		switch field {
		case "state":
			s, ok := val.(string)
			if !ok || (flagset.State(s) != flagset.Enabled && flagset.State(s) != flagset.Disabled) {
				// The value is not repeated: stored values may be secrets.
				return nil, nil, fmt.Errorf("flags.%s.state: must be ENABLED or DISABLED", key)
			}
			st := flagset.State(s)
			ov.State = &st
		case "defaultVariant":
			s, ok := val.(string)
			if !ok {
				return nil, nil, fmt.Errorf("flags.%s.defaultVariant: must be a variant name (a string), got a %T", key, val)
			}
			ov.DefaultVariant = &s
		default:
			return nil, nil, fmt.Errorf("flags.%s.%s: unknown field in a patch (a patch may set state and defaultVariant; a full definition needs variants)", key, field)
		}
	}
	if ov.State == nil && ov.DefaultVariant == nil {
		return nil, nil, fmt.Errorf("flags.%s: empty patch", key)
	}
	return nil, ov, nil
}

func isYAMLNull(b []byte) bool {
	switch string(b) {
	case "null", "Null", "NULL", "~":
		return true
	}
	return false
}

func mustJSONString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
