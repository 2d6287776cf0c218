package flagset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// stableMetadata drops the metadata keys that change on every publish.
func stableMetadata(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k == MetaVersion || strings.HasPrefix(k, "flagsync.") {
			continue
		}
		out[k] = v
	}
	return out
}

// writeDocHead writes the document up to the first flag: `{`, $evaluators,
// $schema and `"flags":{`.
func writeDocHead(buf *bytes.Buffer, evaluators map[string]json.RawMessage, schema string) error {
	buf.WriteByte('{')
	if len(evaluators) > 0 {
		buf.WriteString(`"$evaluators":{`)
		for i, name := range sortedKeys(evaluators) {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, name)
			buf.WriteByte(':')
			if err := writeRaw(buf, evaluators[name]); err != nil {
				return fmt.Errorf("$evaluators.%s: %w", name, err)
			}
		}
		buf.WriteString("},")
	}
	if schema != "" {
		buf.WriteString(`"$schema":`)
		writeString(buf, schema)
		buf.WriteByte(',')
	}
	buf.WriteString(`"flags":{`)
	return nil
}

// writeDocTail closes the flags object and writes metadata and the final `}`.
func writeDocTail(buf *bytes.Buffer, meta map[string]any) error {
	buf.WriteByte('}')
	if len(meta) > 0 {
		buf.WriteString(`,"metadata":`)
		if err := writeValue(buf, meta, 0); err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
	}
	buf.WriteByte('}')
	return nil
}

// writeBody writes the flags' entries (chunks of `,"key":{flag}`) without the
// leading comma.
func writeBody(w io.Writer, body [][]byte) {
	first := true
	for _, c := range body {
		if len(c) == 0 {
			continue
		}
		if first {
			c, first = c[1:], false
		}
		_, _ = w.Write(c)
	}
}

// computeRevision is the revision of the set's document with set metadata meta
// (its stable part is hashed). A published set hashes the body it wrote while
// compiling; a reader's set encodes its flags now, straight into the hash.
func (s *Set) computeRevision(meta map[string]any) (string, error) {
	h := sha256.New()
	var buf bytes.Buffer
	if err := writeDocHead(&buf, s.doc.Evaluators, ""); err != nil {
		return "", err
	}
	h.Write(buf.Bytes())
	if err := s.writeFlags(h); err != nil {
		return "", err
	}
	buf.Reset()
	if err := writeDocTail(&buf, stableMetadata(meta)); err != nil {
		return "", err
	}
	h.Write(buf.Bytes())
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeFlags writes the flags' entries `"key":{flag}`, comma-separated, in key
// order: the body a published set holds, else encoded now.
func (s *Set) writeFlags(w io.Writer) error {
	if s.body != nil || len(s.keys) == 0 {
		writeBody(w, s.body)
		return nil
	}
	var enc bytes.Buffer // one entry, reused
	for i, key := range s.keys {
		enc.Reset()
		if err := writeEntry(&enc, key, s.flags[key], nil); err != nil {
			return err
		}
		b := enc.Bytes()
		if i == 0 {
			b = b[1:]
		}
		_, _ = w.Write(b)
	}
	return nil
}

// writeEntry writes one flag's entry of the body, `,"key":{flag}`.
// metaKeys may hold the flag's metadata keys, sorted (nil: sorted here).
func writeEntry(buf *bytes.Buffer, key string, cf *compiledFlag, metaKeys []string) error {
	buf.WriteByte(',')
	writeString(buf, key)
	buf.WriteByte(':')
	if err := writeCanonicalFlag(buf, cf.def(), cf, metaKeys); err != nil {
		return fmt.Errorf("flags.%s: %w", key, err)
	}
	return nil
}

// Canonical is the canonical encoding of s.Document() (see docs/FORMAT.md): no
// insignificant whitespace, keys sorted by code point, ECMAScript number
// formatting, minimal string escaping; Python produces the same bytes. A
// published set (CompileStrict, and the sets WithMetadata derives) reuses the
// flag encodings made while compiling, so it only assembles: one allocation of
// the result's size. A reader's set encodes its flags now.
func (s *Set) Canonical() ([]byte, error) {
	var head, tail bytes.Buffer
	if err := writeDocHead(&head, s.doc.Evaluators, s.doc.Schema); err != nil {
		return nil, fmt.Errorf("flagset: canonical: %w", err)
	}
	if err := writeDocTail(&tail, s.doc.Metadata); err != nil {
		return nil, fmt.Errorf("flagset: canonical: %w", err)
	}
	size := head.Len() + tail.Len()
	for _, c := range s.body {
		size += len(c)
	}
	out := bytes.NewBuffer(make([]byte, 0, size))
	out.Write(head.Bytes())
	if err := s.writeFlags(out); err != nil {
		return nil, fmt.Errorf("flagset: canonical: %w", err)
	}
	out.Write(tail.Bytes())
	return out.Bytes(), nil
}

// writeCanonicalFlag appends the canonical encoding of f to buf: defaultVariant,
// metadata, state, targeting, variants. cf, f's compiled form, may be nil;
// metaKeys may hold f's metadata keys, sorted (nil: sorted here).
func writeCanonicalFlag(buf *bytes.Buffer, f *Flag, cf *compiledFlag, metaKeys []string) error {
	if f == nil {
		return fmt.Errorf("nil flag")
	}
	buf.WriteString(`{"defaultVariant":`)
	if f.DefaultVariant == nil {
		buf.WriteString("null")
	} else {
		writeString(buf, *f.DefaultVariant)
	}
	if len(f.Metadata) > 0 {
		buf.WriteString(`,"metadata":`)
		var err error
		if len(metaKeys) == len(f.Metadata) {
			buf.WriteByte('{')
			for i, k := range metaKeys {
				if i > 0 {
					buf.WriteByte(',')
				}
				writeString(buf, k)
				buf.WriteByte(':')
				if err = writeValue(buf, f.Metadata[k], 1); err != nil {
					break
				}
			}
			buf.WriteByte('}')
		} else {
			err = writeValue(buf, f.Metadata, 0)
		}
		if err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
	}
	buf.WriteString(`,"state":`)
	writeString(buf, string(f.State))
	if !isEmptyTargeting(f.Targeting) {
		buf.WriteString(`,"targeting":`)
		if (cf != nil && cf.canonicalRule) || (cf == nil && f.canonicalTargeting()) {
			buf.Write(f.Targeting) // Parse stored it in canonical form
		} else if err := writeRaw(buf, f.Targeting); err != nil {
			return fmt.Errorf("targeting: %w", err)
		}
	}
	buf.WriteString(`,"variants":`)
	if cf != nil && len(cf.variants) == len(f.Variants) {
		buf.WriteByte('{')
		for i, v := range cf.variants {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, v.name)
			buf.WriteByte(':')
			if err := writeValue(buf, v.raw, 1); err != nil {
				return fmt.Errorf("variants.%s: %w", v.name, err)
			}
		}
		buf.WriteByte('}')
	} else {
		variants := f.Variants
		if variants == nil {
			variants = map[string]any{}
		}
		if err := writeValue(buf, variants, 0); err != nil {
			return fmt.Errorf("variants: %w", err)
		}
	}
	buf.WriteByte('}')
	return nil
}

// isEmptyTargeting tells absent, null and {} targeting apart from real rules.
func isEmptyTargeting(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || string(t) == "null" {
		return true
	}
	if t[0] != '{' {
		return false
	}
	return len(bytes.TrimSpace(t[1:len(t)-1])) == 0
}

// CanonicalValue encodes any JSON-like Go value with the canonical rules
// (sorted keys, ECMAScript numbers, minimal escaping). Accepted: nil, bool,
// string, every Go integer and float type (finite), json.Number,
// json.RawMessage, []any, map[string]any and other slices/maps with string keys.
func CanonicalValue(v any) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(64)
	if err := writeValue(&buf, v, 0); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeRaw(buf *bytes.Buffer, raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	return writeValue(buf, v, 0)
}

// maxEncodeDepth bounds recursion for values built in Go (decoded ones are already bounded).
const maxEncodeDepth = 10000

func writeValue(buf *bytes.Buffer, v any, depth int) error {
	if depth > maxEncodeDepth {
		return fmt.Errorf("value nested deeper than %d levels", maxEncodeDepth)
	}
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		if x {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case string:
		if !utf8.ValidString(x) {
			return fmt.Errorf("string %q is not valid UTF-8", x)
		}
		writeString(buf, x)
	case float64:
		return writeNumber(buf, x)
	case float32:
		return writeNumber(buf, float64(x))
	case int:
		return writeNumber(buf, float64(x))
	case int64:
		return writeNumber(buf, float64(x))
	case int32:
		return writeNumber(buf, float64(x))
	case int16:
		return writeNumber(buf, float64(x))
	case int8:
		return writeNumber(buf, float64(x))
	case uint:
		return writeNumber(buf, float64(x))
	case uint64:
		return writeNumber(buf, float64(x))
	case uint32:
		return writeNumber(buf, float64(x))
	case uint16:
		return writeNumber(buf, float64(x))
	case uint8:
		return writeNumber(buf, float64(x))
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return fmt.Errorf("number %q: %w", x, err)
		}
		return writeNumber(buf, f)
	case json.RawMessage:
		return writeRaw(buf, x)
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeValue(buf, e, depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case ruleOp:
		buf.WriteByte('{')
		writeString(buf, x.op)
		buf.WriteByte(':')
		if err := writeValue(buf, x.arg, depth+1); err != nil {
			return err
		}
		buf.WriteByte('}')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys) // Go compares strings bytewise: UTF-8 byte order = code point order
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			if !utf8.ValidString(k) {
				return fmt.Errorf("key %q is not valid UTF-8", k)
			}
			writeString(buf, k)
			buf.WriteByte(':')
			if err := writeValue(buf, x[k], depth+1); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		buf.WriteByte('}')
	default:
		return writeReflect(buf, v, depth)
	}
	return nil
}

// writeReflect handles typed slices and string-keyed maps ([]string, map[string]string, ...).
func writeReflect(buf *bytes.Buffer, v any, depth int) error {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		a := make([]any, rv.Len())
		for i := range a {
			a[i] = rv.Index(i).Interface()
		}
		return writeValue(buf, a, depth)
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("unsupported map key type %s", rv.Type().Key())
		}
		m := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			m[it.Key().String()] = it.Value().Interface()
		}
		return writeValue(buf, m, depth)
	case reflect.String:
		return writeValue(buf, rv.String(), depth)
	case reflect.Bool:
		return writeValue(buf, rv.Bool(), depth)
	case reflect.Float32, reflect.Float64:
		return writeNumber(buf, rv.Float())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return writeNumber(buf, float64(rv.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return writeNumber(buf, float64(rv.Uint()))
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			buf.WriteString("null")
			return nil
		}
		return writeValue(buf, rv.Elem().Interface(), depth+1)
	}
	return fmt.Errorf("unsupported value type %T", v)
}

func writeNumber(buf *bytes.Buffer, f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("number %v is not finite", f)
	}
	buf.WriteString(FormatNumber(f))
	return nil
}

// FormatNumber renders a finite float64 like ECMAScript Number::toString, with
// integral values below 2^53 in plain integer form (-0 → "0"). It is the number
// format of the canonical encoding and of number→string coercion in rules.
func FormatNumber(f float64) string {
	if f == 0 {
		return "0"
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return strconv.FormatInt(int64(f), 10)
	}
	if math.IsNaN(f) {
		return "NaN"
	}
	if math.IsInf(f, 1) {
		return "Infinity"
	}
	if math.IsInf(f, -1) {
		return "-Infinity"
	}
	sign := ""
	if f < 0 {
		sign = "-"
		f = -f
	}
	// Shortest round-trip digits: "d.ddde±XX".
	e := strconv.FormatFloat(f, 'e', -1, 64)
	mant, expStr, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	exp, _ := strconv.Atoi(expStr)
	k := len(digits)
	n := exp + 1 // value = 0.digits × 10^n
	var s string
	switch {
	case k <= n && n <= 21:
		s = digits + strings.Repeat("0", n-k)
	case 0 < n && n <= 21:
		s = digits[:n] + "." + digits[n:]
	case -6 < n && n <= 0:
		s = "0." + strings.Repeat("0", -n) + digits
	default:
		es := "+"
		if n-1 < 0 {
			es = "-"
		}
		ex := n - 1
		if ex < 0 {
			ex = -ex
		}
		if k == 1 {
			s = digits + "e" + es + strconv.Itoa(ex)
		} else {
			s = digits[:1] + "." + digits[1:] + "e" + es + strconv.Itoa(ex)
		}
	}
	return sign + s
}

const hexDigits = "0123456789abcdef"

// writeString writes s as a JSON string with the canonical (minimal) escaping.
func writeString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf.WriteString(s[start:i])
		switch c {
		case '"':
			buf.WriteString(`\"`)
		case '\\':
			buf.WriteString(`\\`)
		case '\b':
			buf.WriteString(`\b`)
		case '\t':
			buf.WriteString(`\t`)
		case '\n':
			buf.WriteString(`\n`)
		case '\f':
			buf.WriteString(`\f`)
		case '\r':
			buf.WriteString(`\r`)
		default:
			buf.WriteString(`\u00`)
			buf.WriteByte(hexDigits[c>>4])
			buf.WriteByte(hexDigits[c&0xf])
		}
		start = i + 1
	}
	buf.WriteString(s[start:])
	buf.WriteByte('"')
}
