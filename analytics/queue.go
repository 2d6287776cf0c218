package analytics

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"

	"github.com/open-feature/go-sdk/openfeature"
)

// queue holds evaluations between Finally and the writer, encoded into one byte slice.
// A byte slice holds no pointers, so the garbage collector never scans the queue: a
// slice of structs with strings, interfaces and context maps would be rescanned on
// every GC cycle (megabytes at the default buffer size), a cost each evaluation would
// pay through GC assists. Only values of other types than the scalar ones below (maps,
// slices, structs) are kept as they are, in objs.
//
// A record holds the columns in file order: at (8 bytes), flag and variant (each a
// uvarint length and the bytes), the value, reason, error code and targeting key
// (strings as before), then one value per configured attribute.
// A value is a kind byte and, for kindString a uvarint length and bytes, for kindFloat,
// kindInt and kindUint 8 bytes, for kindObj a uvarint index into objs.
type queue struct {
	buf  []byte
	objs []any
	n    int // records in buf
}

const (
	kindNil byte = iota
	kindFalse
	kindTrue
	kindString
	kindFloat
	kindInt
	kindUint
	kindObj
)

// newQueue sizes the buffer for what usually accumulates before the writer is woken;
// it grows when the writer falls behind and keeps that size.
func newQueue(cfg Config) queue {
	return queue{buf: make([]byte, 0, min(cfg.BufferSize*(64+16*len(cfg.Attributes)), 2*wakeBytes))}
}

// add encodes one evaluation; attributes are looked up in ec now, so the context
// itself is not retained.
func (q *queue) add(at int64, flag, variant, reason, errorCode string, value any, ec openfeature.EvaluationContext, attributes []string) {
	// One capacity check for the fixed part instead of one per append.
	b := slices.Grow(q.buf, 8+5*binary.MaxVarintLen32+len(flag)+len(variant)+len(reason)+len(errorCode)+len(ec.TargetingKey())+10*(1+len(attributes)))
	b = binary.LittleEndian.AppendUint64(b, uint64(at))
	b = appendString(b, flag)
	b = appendString(b, variant)
	b = q.appendValue(b, value)
	b = appendString(b, reason)
	b = appendString(b, errorCode)
	b = appendString(b, ec.TargetingKey())
	for _, a := range attributes {
		b = q.appendValue(b, ec.Attribute(a))
	}
	q.buf = b
	q.n++
}

// reset empties the queue, keeping its memory and dropping references to objects.
func (q *queue) reset() {
	q.buf = q.buf[:0]
	clear(q.objs)
	q.objs = q.objs[:0]
	q.n = 0
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendValue encodes v. The kinds mirror formatValue's cases exactly (json.Number is
// written as its text, as formatValue does); every other type goes to objs and is
// formatted by formatValue's JSON path later, as before.
func (q *queue) appendValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, kindNil)
	case string:
		return appendString(append(b, kindString), x)
	case json.Number:
		return appendString(append(b, kindString), string(x))
	case bool:
		if x {
			return append(b, kindTrue)
		}
		return append(b, kindFalse)
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, kindFloat), math.Float64bits(x))
	case float32:
		return binary.LittleEndian.AppendUint64(append(b, kindFloat), math.Float64bits(float64(x)))
	case int:
		return binary.LittleEndian.AppendUint64(append(b, kindInt), uint64(x))
	case int64:
		return binary.LittleEndian.AppendUint64(append(b, kindInt), uint64(x))
	case int32:
		return binary.LittleEndian.AppendUint64(append(b, kindInt), uint64(x))
	case uint64:
		return binary.LittleEndian.AppendUint64(append(b, kindUint), x)
	}
	q.objs = append(q.objs, v)
	return binary.AppendUvarint(append(b, kindObj), uint64(len(q.objs)-1))
}

// field is one decoded value: num holds the bits of floats and integers, or the index
// into objs; s points into the queue's buffer.
type field struct {
	kind byte
	num  uint64
	s    []byte
}

// decoder reads a queue's buffer front to back, one column at a time, so the writer
// formats straight from it. The buffer is encoded by this package only, so it is
// trusted.
type decoder struct {
	buf []byte
	off int
}

func (d *decoder) more() bool { return d.off < len(d.buf) }

func (d *decoder) int64() int64 {
	v := int64(binary.LittleEndian.Uint64(d.buf[d.off:]))
	d.off += 8
	return v
}

func (d *decoder) bytes() []byte {
	n, k := binary.Uvarint(d.buf[d.off:])
	d.off += k
	s := d.buf[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return s
}

func (d *decoder) field() field {
	f := field{kind: d.buf[d.off]}
	d.off++
	switch f.kind {
	case kindString:
		f.s = d.bytes()
	case kindFloat, kindInt, kindUint:
		f.num = binary.LittleEndian.Uint64(d.buf[d.off:])
		d.off += 8
	case kindObj:
		n, k := binary.Uvarint(d.buf[d.off:])
		d.off += k
		f.num = n
	}
	return f
}
