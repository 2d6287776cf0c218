package flagset

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// The JSON decoder below produces the shapes encoding/json produces for `any`
// (map[string]any, []any, float64, string, bool, nil). It exists because
// documents with many thousands of flags are decoded on every sync and every
// reader reload: it makes one pass (encoding/json validates, then decodes),
// enforces MaxDepth while decoding, decodes flags straight into Flag values
// and shares the many repeated short strings ("state", "ENABLED", variant
// names). The input must be valid UTF-8 (Parse checks that first).

// decodeJSONDocument decodes a document whose text starts with '{'. Flags are
// decoded straight into Flag values (no intermediate map per flag). A flag whose
// text is the text prev (nil: none) compiled without problems is not decoded:
// prev's definition stands in for it, and it is returned in reused.
func decodeJSONDocument(data []byte, prev *Set) (doc *Document, reused map[string]*compiledFlag, err error) {
	d := jsonDecoder{data: data, intern: make(map[string]string, 64)}
	d.skipSpace()
	obj := make(map[string]any, 4)
	var flags map[string]*Flag
	err = d.objectEach(func(k string) error {
		if k == "flags" && d.data[d.pos] == '{' {
			flags = make(map[string]*Flag)
			d.noIntern = true
			return d.objectEach(func(key string) error {
				start, end := d.pos, -1
				var sum textSum
				if cf := prev.reusable(key); cf != nil {
					var ok bool
					if end, ok = skipObject(d.data, start); ok {
						if sum = sumText(d.data[start:end]); sum == cf.own.text {
							if reused == nil {
								reused = make(map[string]*compiledFlag)
							}
							reused[key] = cf
							flags[key] = cf.def()
							d.pos = end
							return nil
						}
					}
				}
				delete(reused, key) // a later duplicate key replaces a reused flag
				f, err := d.flag()
				if err == nil && f != nil && !f.notObject() && len(f.decodeProblems()) == 0 {
					if d.pos != end { // not summed above
						sum = sumText(d.data[start:d.pos])
					}
					f.text = sum
				}
				flags[key] = f
				return err
			})
		}
		v, err := d.value()
		obj[k] = v
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	d.skipSpace()
	if d.pos != len(d.data) {
		return nil, nil, d.errorf("unexpected %q after the top-level value", d.data[d.pos])
	}
	if flags != nil {
		delete(obj, "flags") // a later duplicate "flags" of another type lost to the object
	}
	doc = documentFromMap(obj, flags)
	doc.sharedVariants = d.shared
	if doc.sharedVariants == nil {
		doc.sharedVariants = map[unsafe.Pointer]struct{}{}
	}
	return doc, reused, nil
}

// flag decodes one flag value.
func (d *jsonDecoder) flag() (*Flag, error) {
	if d.data[d.pos] != '{' {
		v, err := d.value()
		return flagFromValue(v), err
	}
	f := &Flag{}
	var unknown []string
	err := d.objectEach(func(k string) error {
		start := d.pos
		d.rule = k == "targeting"
		v, err := d.value()
		d.rule = false
		if err == nil && k == "variants" {
			v = d.shareVariants(d.data[start:d.pos], v)
		}
		if err == nil && !f.setField(k, v, d.pos-start) {
			unknown = append(unknown, k)
		}
		return err
	})
	f.finishDecode(unknown)
	return f, err
}

// maxSharedVariants bounds the text of a variants object shareVariants shares.
const maxSharedVariants = 256

// shareVariants returns the variants map decoded earlier from the same text, if
// any, else v. Most flags of a large document have the same few variants (on/off),
// and one map per flag is most of a document's memory. Only objects of scalars
// are shared.
func (d *jsonDecoder) shareVariants(text []byte, v any) any {
	m, ok := v.(map[string]any)
	if !ok || len(text) > maxSharedVariants {
		return v
	}
	if prev, ok := d.variants[unsafe.String(unsafe.SliceData(text), len(text))]; ok {
		if d.shared == nil {
			d.shared = make(map[unsafe.Pointer]struct{}, 16)
		}
		d.shared[mapIdentity(prev)] = struct{}{}
		return prev
	}
	for _, x := range m {
		switch x.(type) {
		case bool, string, float64:
		default:
			return v
		}
	}
	if d.variants == nil {
		d.variants = make(map[string]map[string]any, 16)
	}
	if len(d.variants) < maxInterned {
		d.variants[string(text)] = m
	}
	return v
}

// objectEach walks an object starting at '{', calling member for each key with
// the position at the start of the member's value; member must consume it.
func (d *jsonDecoder) objectEach(member func(key string) error) error {
	if d.pos >= len(d.data) {
		return errJSONEOF
	}
	if d.data[d.pos] != '{' {
		return d.errorf("invalid character %q looking for an object", d.data[d.pos])
	}
	if empty, err := d.open('}'); empty || err != nil {
		return err
	}
	uniqueKeys := d.noIntern
	d.noIntern = false
	for {
		d.skipSpace()
		if d.pos >= len(d.data) {
			return errJSONEOF
		}
		if d.data[d.pos] != '"' {
			return d.errorf("invalid character %q looking for an object key", d.data[d.pos])
		}
		d.noIntern = uniqueKeys
		k, err := d.str()
		d.noIntern = false
		if err != nil {
			return err
		}
		if err := d.colon(); err != nil {
			return err
		}
		d.skipSpace()
		if d.pos >= len(d.data) {
			return errJSONEOF
		}
		if err := member(k); err != nil {
			return err
		}
		if more, err := d.next('}', "an object value"); !more {
			return err
		}
	}
}

type jsonDecoder struct {
	data     []byte
	pos      int
	depth    int
	intern   map[string]string
	boxed    map[string]any              // short string values already boxed in an interface
	noIntern bool                        // the next object's keys are unique (flag keys): do not intern them
	rule     bool                        // decoding targeting: a one-key object is a ruleOp
	variants map[string]map[string]any   // variants objects by their text (see shareVariants)
	shared   map[unsafe.Pointer]struct{} // the variants maps shareVariants handed out more than once
}

// maxInterned bounds the intern table so unique strings (flag keys) do not fill it.
const (
	maxInternLen = 24
	maxInterned  = 4096
)

func (d *jsonDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", d.pos, fmt.Sprintf(format, args...))
}

func (d *jsonDecoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

var (
	errJSONEOF = errors.New("unexpected end of JSON input")
	errTooDeep = fmt.Errorf("flagset: document nesting is deeper than the limit of %d levels", MaxDepth)
)

func (d *jsonDecoder) value() (any, error) {
	if d.pos >= len(d.data) {
		return nil, errJSONEOF
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		return d.strValue()
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	default:
		return nil, d.errorf("invalid character %q looking for a value", c)
	}
}

func (d *jsonDecoder) literal(word string) error {
	if len(d.data)-d.pos < len(word) || string(d.data[d.pos:d.pos+len(word)]) != word {
		return d.errorf("invalid literal, want %s", word)
	}
	d.pos += len(word)
	return nil
}

func (d *jsonDecoder) enter() error {
	d.depth++
	if d.depth > MaxDepth {
		return errTooDeep
	}
	return nil
}

// open enters the object or array whose opening bracket is at pos and skips to its
// first member; empty reports that close followed at once (and was consumed).
func (d *jsonDecoder) open(close byte) (empty bool, err error) {
	if err := d.enter(); err != nil {
		return false, err
	}
	d.pos++
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == close {
		d.pos++
		d.depth--
		return true, nil
	}
	return false, nil
}

// colon consumes the ':' after an object key.
func (d *jsonDecoder) colon() error {
	d.skipSpace()
	if d.pos >= len(d.data) {
		return errJSONEOF
	}
	if d.data[d.pos] != ':' {
		return d.errorf("invalid character %q after an object key", d.data[d.pos])
	}
	d.pos++
	return nil
}

// next consumes what follows a member (what names it in errors): a ',' (more is true)
// or the container's close, which leaves it.
func (d *jsonDecoder) next(close byte, what string) (more bool, err error) {
	d.skipSpace()
	if d.pos >= len(d.data) {
		return false, errJSONEOF
	}
	switch d.data[d.pos] {
	case ',':
		d.pos++
		return true, nil
	case close:
		d.pos++
		d.depth--
		return false, nil
	}
	return false, d.errorf("invalid character %q after %s", d.data[d.pos], what)
}

// ruleOp is a one-key object {op: arg} of a flag's targeting as Parse decodes
// it: nearly every object of a JsonLogic rule is one, and a map per operation
// would be most of a rule's memory. It never leaves the package: Compile reads
// it, and the canonical encoding writes it as the object it was.
type ruleOp struct {
	op  string
	arg any
}

// ruleData turns the ruleOps in v back into the objects they were.
func ruleData(v any) any {
	switch x := v.(type) {
	case ruleOp:
		return map[string]any{x.op: ruleData(x.arg)}
	case []any:
		for i, e := range x {
			x[i] = ruleData(e)
		}
	}
	return v
}

func (d *jsonDecoder) object() (any, error) {
	empty, err := d.open('}')
	if err != nil {
		return nil, err
	}
	if empty {
		return make(map[string]any), nil
	}
	var m map[string]any // made at the first member kept in it: a ruleOp needs none
	for {
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, errJSONEOF
		}
		if d.data[d.pos] != '"' {
			return nil, d.errorf("invalid character %q looking for an object key", d.data[d.pos])
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		if err := d.colon(); err != nil {
			return nil, err
		}
		d.skipSpace()
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		more, err := d.next('}', "an object value")
		if err != nil {
			return nil, err
		}
		if d.rule && len(m) == 0 {
			if !more {
				return ruleOp{k, v}, nil
			}
			// An object of more keys is data, and so is all it holds.
			v = ruleData(v)
			d.rule = false
			defer func() { d.rule = true }()
		}
		if m == nil {
			m = make(map[string]any)
		}
		m[k] = v
		if !more {
			return m, nil
		}
	}
}

func (d *jsonDecoder) array() (any, error) {
	empty, err := d.open(']')
	if err != nil {
		return nil, err
	}
	a := make([]any, 0, 4)
	if empty {
		return a, nil
	}
	for {
		d.skipSpace()
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		if more, err := d.next(']', "an array element"); !more {
			if err != nil {
				return nil, err
			}
			return a, nil
		}
	}
}

// strValue decodes a string value; short ones share one boxed interface value,
// which saves an allocation per repeated value ("ENABLED", variant names).
func (d *jsonDecoder) strValue() (any, error) {
	start := d.pos + 1
	for i := start; i < len(d.data) && i-start <= maxInternLen; i++ {
		c := d.data[i]
		if c == '"' {
			b := d.data[start:i]
			if v, ok := d.boxed[unsafe.String(unsafe.SliceData(b), len(b))]; ok {
				d.pos = i + 1
				return v, nil
			}
			str := d.makeString(b)
			var v any = str
			if d.boxed == nil {
				d.boxed = make(map[string]any, 64)
			}
			if len(d.boxed) < maxInterned {
				d.boxed[str] = v
			}
			d.pos = i + 1
			return v, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
	}
	return d.str()
}

// str decodes a string starting at the opening quote.
func (d *jsonDecoder) str() (string, error) {
	start := d.pos + 1
	i := start
	for i < len(d.data) {
		c := d.data[i]
		if c == '"' {
			d.pos = i + 1
			return d.makeString(d.data[start:i]), nil
		}
		if c == '\\' {
			return d.strEscaped(start, i)
		}
		if c < 0x20 {
			d.pos = i
			return "", d.errorf("invalid control character in string")
		}
		i++
	}
	d.pos = i
	return "", errJSONEOF
}

func (d *jsonDecoder) makeString(b []byte) string {
	if len(b) > maxInternLen || d.noIntern {
		return string(b)
	}
	if s, ok := d.intern[unsafe.String(unsafe.SliceData(b), len(b))]; ok {
		return s
	}
	s := string(b)
	if len(d.intern) < maxInterned {
		d.intern[s] = s
	}
	return s
}

// strEscaped decodes a string that contains escapes; esc is the first backslash.
func (d *jsonDecoder) strEscaped(start, esc int) (string, error) {
	buf := make([]byte, 0, esc-start+16)
	buf = append(buf, d.data[start:esc]...)
	i := esc
	for i < len(d.data) {
		c := d.data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return string(buf), nil
		case c < 0x20:
			d.pos = i
			return "", d.errorf("invalid control character in string")
		case c != '\\':
			buf = append(buf, c)
			i++
			continue
		}
		if i+1 >= len(d.data) {
			d.pos = i
			return "", errJSONEOF
		}
		i++
		switch d.data[i] {
		case '"', '\\', '/':
			buf = append(buf, d.data[i])
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := hex4(d.data, i+1)
			if !ok {
				d.pos = i
				return "", d.errorf("invalid \\u escape")
			}
			i += 4
			if utf16.IsSurrogate(r) {
				// A valid pair combines; a lone surrogate becomes U+FFFD (like encoding/json).
				if i+6 < len(d.data) && d.data[i+1] == '\\' && d.data[i+2] == 'u' {
					if r2, ok := hex4(d.data, i+3); ok {
						if c := utf16.DecodeRune(r, r2); c != utf8.RuneError {
							buf = utf8.AppendRune(buf, c)
							i += 7
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			buf = utf8.AppendRune(buf, r)
		default:
			d.pos = i
			return "", d.errorf("invalid escape character %q in string", d.data[i])
		}
		i++
	}
	d.pos = i
	return "", errJSONEOF
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// number decodes a JSON number (strict grammar) as float64.
func (d *jsonDecoder) number() (any, error) {
	start := d.pos
	i := d.pos
	if d.data[i] == '-' {
		i++
	}
	intStart := i
	for i < len(d.data) && d.data[i] >= '0' && d.data[i] <= '9' {
		i++
	}
	intDigits := i - intStart
	if intDigits == 0 || (intDigits > 1 && d.data[intStart] == '0') {
		d.pos = start
		return nil, d.errorf("invalid number")
	}
	simple := true
	if i < len(d.data) && d.data[i] == '.' {
		simple = false
		i++
		fs := i
		for i < len(d.data) && d.data[i] >= '0' && d.data[i] <= '9' {
			i++
		}
		if i == fs {
			d.pos = start
			return nil, d.errorf("invalid number")
		}
	}
	if i < len(d.data) && (d.data[i] == 'e' || d.data[i] == 'E') {
		simple = false
		i++
		if i < len(d.data) && (d.data[i] == '+' || d.data[i] == '-') {
			i++
		}
		es := i
		for i < len(d.data) && d.data[i] >= '0' && d.data[i] <= '9' {
			i++
		}
		if i == es {
			d.pos = start
			return nil, d.errorf("invalid number")
		}
	}
	d.pos = i
	if simple && intDigits <= 15 {
		// Exact in float64: no need for the general parser.
		var n int64
		for _, c := range d.data[intStart:i] {
			n = n*10 + int64(c-'0')
		}
		if d.data[start] == '-' {
			if n == 0 {
				return 0.0, nil // -0 is 0: JSON readers disagree on -0, flagsync does not keep it
			}
			n = -n
		}
		return float64(n), nil
	}
	b := d.data[start:i]
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(b), len(b)), 64)
	if err != nil || math.IsInf(f, 0) {
		d.pos = start
		return nil, d.errorf("number %s is out of range", b)
	}
	return f, nil
}
