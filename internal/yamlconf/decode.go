package yamlconf

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// JoinPath is the key path of key inside base ("http", "listen" → "http.listen").
func JoinPath(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

// Value is the value of key in mapping n, or nil.
func Value(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

var durationType = reflect.TypeFor[time.Duration]()

// Decode decodes mapping n into the struct pointed to by v key by key, so an
// unknown key or a wrong type is reported with its full path. Keys listed in skip are
// handled by the caller.
func Decode(n *yaml.Node, v any, path string, skip ...string) error {
	rv := reflect.ValueOf(v).Elem()
	if n.Kind != yaml.MappingNode {
		if path == "" {
			return errors.New("configuration must be a mapping")
		}
		return fmt.Errorf("%s: must be a mapping", path)
	}
	fields := map[string]int{}
	var known []string
	for i := 0; i < rv.NumField(); i++ {
		tag := strings.Split(rv.Type().Field(i).Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		fields[tag] = i
		known = append(known, tag)
	}
	known = append(known, skip...)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i].Value, n.Content[i+1]
		p := JoinPath(path, key)
		if seen[key] {
			return fmt.Errorf("%s: duplicate key", p)
		}
		seen[key] = true
		if slices.Contains(skip, key) {
			continue
		}
		idx, ok := fields[key]
		if !ok {
			return fmt.Errorf("%s: unknown key (known keys here: %s)", p, strings.Join(known, ", "))
		}
		fv := rv.Field(idx)
		if err := decodeField(val, fv, p); err != nil {
			return err
		}
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func decodeField(val *yaml.Node, fv reflect.Value, p string) error {
	t := fv.Type()
	if reflect.PointerTo(t).Implements(unmarshalerType) || (t.Kind() == reflect.Pointer && t.Implements(unmarshalerType)) {
		// The type reads itself (e.g. lifecycle.Config, lifecycle.Duration). A struct
		// is first decoded key by key into a scratch value, so unknown keys and bad
		// values are reported with their full path.
		if st := structOf(t); st != nil && val.Kind == yaml.MappingNode && hasYAMLKeys(st) {
			if err := Decode(val, reflect.New(st).Interface(), p); err != nil {
				return err
			}
		}
		if err := val.Decode(fv.Addr().Interface()); err != nil {
			return fmt.Errorf("%s: %s", p, ErrorText(err))
		}
		return nil
	}
	if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct && val.Kind == yaml.SequenceNode {
		// Lists of structs (notify.webhooks, ...) get the same key checks per item.
		out := reflect.MakeSlice(t, len(val.Content), len(val.Content))
		for i, item := range val.Content {
			if err := decodeField(item, out.Index(i), fmt.Sprintf("%s[%d]", p, i)); err != nil {
				return err
			}
		}
		fv.Set(out)
		return nil
	}
	if t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct {
		if val.Kind == yaml.ScalarNode && val.ShortTag() == "!!null" {
			return nil
		}
		nv := reflect.New(t.Elem())
		if err := Decode(val, nv.Interface(), p); err != nil {
			return err
		}
		fv.Set(nv)
		return nil
	}
	if t.Kind() == reflect.Struct && t != durationType {
		return Decode(val, fv.Addr().Interface(), p)
	}
	if err := val.Decode(fv.Addr().Interface()); err != nil {
		if t == durationType {
			return fmt.Errorf("%s: must be a duration like 100ms or 30s: %s", p, ErrorText(err))
		}
		return fmt.Errorf("%s: %s", p, ErrorText(err))
	}
	return nil
}

// structOf is the struct type of t or *t, or nil.
func structOf(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct {
		return t
	}
	return nil
}

// hasYAMLKeys tells whether struct type st names its keys with yaml tags (a type
// like lifecycle.ActionPolicy reads a free-form mapping instead).
func hasYAMLKeys(st reflect.Type) bool {
	for i := 0; i < st.NumField(); i++ {
		if tag := st.Field(i).Tag.Get("yaml"); tag != "" && tag != "-" {
			return true
		}
	}
	return false
}

// yamlErr shortens yaml.v3's type errors ("yaml: unmarshal errors:\n  line 3: cannot
// unmarshal !!str `abc` into float64") to one line without the offending value, since
// values may be secrets.
func ErrorText(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg := te.Errors[0]
		if i := strings.Index(msg, "cannot unmarshal "); i >= 0 {
			rest := msg[i+len("cannot unmarshal "):]
			tag, _, _ := strings.Cut(rest, " ")
			into := ""
			if j := strings.LastIndex(rest, " into "); j >= 0 {
				into = rest[j+len(" into "):]
			}
			line, _, _ := strings.Cut(msg, ":")
			return fmt.Sprintf("%s: wrong type (%s, want %s)", line, tag, into)
		}
		return msg
	}
	return err.Error()
}
