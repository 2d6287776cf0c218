package flagset

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Set is a validated, compiled, immutable flag set. Safe for concurrent use.
type Set struct {
	flags map[string]*compiledFlag // shared by the sets WithMetadata derives
	keys  []string
	list  []*compiledFlag // the flags in key order: list[i] is keys[i]'s; shared too
	doc   *Document
	meta  map[string]any
	// flagMeta[f.index] is flag f's result metadata (this set's metadata overlaid
	// with the flag's own), merged on first use. It is per set, not per compiled
	// flag, because WithMetadata shares compiled flags between sets.
	flagMeta []atomic.Pointer[map[string]any]
	// body is the canonical encoding of the flags (see compileFlags), written only
	// on the publishing path (CompileStrict) and shared by the sets WithMetadata
	// derives; nil for a set a reader compiled.
	body [][]byte
	// revision is metadata.version, or the computed revision of a published set;
	// "" leaves it to lazyRev, which a reader's set computes only when asked.
	revision    string
	lazyRev     *lazyRevision
	generation  int64
	generatedAt time.Time
	hasGenAt    bool
}

// compiledFlag is a flag ready to evaluate: every Result part that does not
// depend on the caller is precomputed so the static path does not allocate. It
// is immutable once compiled, so sets may share it.
type compiledFlag struct {
	key        string
	own        Flag                        // the definition as compiled: a copy, so changing the caller's Flag later does not change the Set
	index      int                         // position in the set's keys (and flagMeta)
	variants   []*compiledVariant          // sorted by name
	byName     map[string]*compiledVariant // only for flags with many variants
	defVariant *compiledVariant            // nil: the caller's default is used
	rule       node                        // nil: no targeting
	ruleErr    string                      // non-empty: targeting cannot be evaluated (PARSE_ERROR)
	disabled   bool
	// fingerprint identifies the canonical encoding of the flag (see Diff).
	fingerprint uint64
	// canonicalRule tells that own.Targeting is the canonical text Parse wrote,
	// so encoding the flag copies it as is.
	canonicalRule bool
}

// def is the flag's definition as compiled (shared; do not mutate).
func (f *compiledFlag) def() *Flag { return &f.own }

// lazyRevision is the revision of a reader's set without metadata.version,
// computed on first use: readers that never ask do not encode the flags.
type lazyRevision struct {
	once  sync.Once
	meta  map[string]any // the set metadata of the set Compile made (WithMetadata shares this)
	value string
}

// compiledVariant holds the variant's value boxed once per Type it can be read
// as: its own, and for a whole number also TypeInteger. It is kept small: a set
// holds one per variant of every flag.
type compiledVariant struct {
	name  string
	raw   any  // the value (normalized), boxed: returned for typ
	whole any  // for a whole number: the value as int64, boxed; else nil
	typ   Type // TypeFloat for numbers
}

// get returns the value read as t, if it can be.
func (v *compiledVariant) get(t Type) (any, bool) {
	if t == v.typ {
		return v.raw, true
	}
	if t == TypeInteger && v.whole != nil {
		return v.whole, true
	}
	return nil, false
}

func (t Type) String() string {
	switch t {
	case TypeBoolean:
		return "boolean"
	case TypeString:
		return "string"
	case TypeInteger:
		return "integer"
	case TypeFloat:
		return "float"
	case TypeObject:
		return "object"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Error lists every problem, one per line.
func (ps Problems) Error() string {
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Error()
	}
	return strings.Join(msgs, "\n")
}

// Validate returns every problem of the document (set level and per flag).
func (d *Document) Validate() Problems {
	_, ps := Compile(d)
	return ps
}

// Load is Parse followed by Compile.
func Load(data []byte) (*Set, Problems, error) {
	d, err := Parse(data)
	if err != nil {
		return nil, nil, err
	}
	s, ps := Compile(d)
	return s, ps, nil
}

// Compile validates and compiles d: the reading path. Invalid flags are left out
// of the Set and reported in Problems; set-level problems are reported too. The
// Set is never nil. It does not encode the flags: Revision (without a
// metadata.version) and Canonical encode them when first asked.
//
// A flag whose only problems are in its targeting (unknown operator, bad $ref,
// wrong arity) stays in the Set and evaluates to ERROR/PARSE_ERROR, so readers
// handed such a document behave like every other reader; the daemon drops
// flags with problems before publishing.
func Compile(d *Document) (*Set, Problems) { return compile(d, false, nil) }

// CompileStrict is Compile for the publishing path: flags with targeting
// problems are left out of the Set too, so it holds exactly the flags without
// any problem, and the flags' canonical encoding and the revision of that
// document are computed while compiling, so the publisher (the daemon) compiles,
// validates, revises and encodes a document in one pass. A flag that cannot be
// encoded canonically is left out and reported.
func CompileStrict(d *Document) (*Set, Problems) { return compile(d, true, nil) }

// compile compiles d; a flag in reused (see Reload) takes that compiled flag
// instead of being compiled again.
func compile(d *Document, strict bool, reused map[string]*compiledFlag) (*Set, Problems) {
	s := &Set{meta: map[string]any{}}
	if d == nil {
		s.flags = map[string]*compiledFlag{}
		s.doc = &Document{Flags: map[string]*Flag{}}
		s.revision, _ = s.computeRevision(nil)
		return s, Problems{{Path: "", Message: "no document"}}
	}
	s.flags = make(map[string]*compiledFlag, len(d.Flags))
	var problems Problems
	problems = append(problems, d.problems...)
	problems = append(problems, validateSetMetadata(d.Metadata)...)
	for k, v := range d.Metadata {
		s.meta[k] = normalize(v)
	}

	rc := newRuleCompiler(d.Evaluators)
	rc.shared = d.sharedVariants
	goodEvaluators := map[string]json.RawMessage{}
	for _, name := range sortedKeys(d.Evaluators) {
		ce, _ := rc.evaluator(name)
		if len(ce.errs) > 0 {
			for _, e := range ce.errs {
				problems = append(problems, Problem{Path: "$evaluators." + name, Message: e})
			}
			continue
		}
		goodEvaluators[name] = d.Evaluators[name]
	}
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Path < problems[j].Path })

	s.doc = &Document{Schema: d.Schema, Flags: make(map[string]*Flag, len(d.Flags))}
	if len(d.Metadata) > 0 {
		s.doc.Metadata = make(map[string]any, len(d.Metadata))
		for k, v := range d.Metadata {
			s.doc.Metadata[k] = v
		}
	}
	if len(goodEvaluators) > 0 {
		s.doc.Evaluators = goodEvaluators
	}
	keys, flags := sortedFlags(d.Flags)
	var shared []*compiledFlag // shared[i] is keys[i]'s flag in reused, if any
	if len(reused) > 0 {
		shared = make([]*compiledFlag, len(keys))
		for i, key := range keys {
			shared[i] = reused[key]
		}
	}
	entries, body := compileFlags(keys, flags, shared, rc, strict)
	s.body = body
	s.keys = make([]string, 0, len(keys))
	s.list = make([]*compiledFlag, 0, len(keys))
	for i, key := range keys {
		e := &entries[i]
		problems = append(problems, e.structural...)
		problems = append(problems, e.targeting...)
		if e.encErr != nil {
			problems = append(problems, Problem{Flag: key, Path: "flags." + key, Message: e.encErr.Error()})
		}
		if !e.included {
			continue
		}
		e.cf.index = len(s.keys)
		s.flags[key] = e.cf
		s.keys = append(s.keys, key)
		s.list = append(s.list, e.cf)
		s.doc.Flags[key] = e.cf.def()
	}

	s.flagMeta = make([]atomic.Pointer[map[string]any], len(s.keys))
	if v, _ := d.Metadata[MetaVersion].(string); v == "" {
		if !strict {
			s.lazyRev = &lazyRevision{meta: s.doc.Metadata}
		} else if r, err := s.computeRevision(d.Metadata); err == nil {
			s.revision = r
		} else {
			problems = append(problems, Problem{Path: "metadata", Message: err.Error()})
		}
	}
	s.readMetadata(d.Metadata)
	return s, problems
}

// readMetadata takes the revision (when metadata.version is set), generation
// and generation time from the set metadata m.
func (s *Set) readMetadata(m map[string]any) {
	if v, ok := m[MetaVersion].(string); ok && v != "" {
		s.revision = v
	}
	if g, ok := normalize(m[MetaGeneration]).(float64); ok && g == math.Trunc(g) {
		s.generation = int64(g)
	}
	if t, ok := m[MetaGeneratedAt].(string); ok {
		if ts, err := time.Parse(time.RFC3339, t); err == nil {
			s.generatedAt, s.hasGenAt = ts, true
		}
	}
}

// WithMetadata returns a Set with s's compiled flags (shared, not compiled
// again) and meta as its flag-set metadata in place of s's. A publisher uses it
// to stamp version, generation and generation time on the set it validated.
// Revision, Generation, GeneratedAt and every evaluation's metadata follow meta;
// without a metadata.version the revision stays s's, which is computed from s's
// metadata. meta should be valid set metadata (Compile reports what is not); it
// is copied.
func (s *Set) WithMetadata(meta map[string]any) *Set {
	n := &Set{flags: s.flags, keys: s.keys, list: s.list, body: s.body, meta: make(map[string]any, len(meta)),
		flagMeta: make([]atomic.Pointer[map[string]any], len(s.keys)), revision: s.revision, lazyRev: s.lazyRev}
	doc := *s.doc
	doc.Metadata = nil
	if len(meta) > 0 {
		doc.Metadata = make(map[string]any, len(meta))
	}
	for k, v := range meta {
		n.meta[k] = normalize(v)
		doc.Metadata[k] = v
	}
	n.doc = &doc
	n.readMetadata(meta)
	return n
}

// compiledEntry is one flag's compile result.
type compiledEntry struct {
	cf                    *compiledFlag
	structural, targeting Problems
	included              bool  // cf goes into the Set (and, when publishing, its entry is in the body)
	encErr                error // publishing: the flag could not be encoded canonically
}

// parallelCompileMin is the flag count from which Compile uses several cores:
// large snapshots are compiled on every sync and every reader reload.
var parallelCompileMin = 2000 // a variable so tests can compare both paths

// compileFlags compiles flags[i], named keys[i], into entries[i].
// When publishing it also returns the body of the set's canonical encoding: the
// entries `,"key":{flag}` of the included flags in key order, in blocks; a
// reader's compile returns none. Flags are independent once $evaluators are
// compiled, so big sets are split across up to 4 goroutines; the caller merges
// the results in key order, so the outcome does not depend on the split.
func compileFlags(keys []string, flags []*Flag, shared []*compiledFlag, rc *ruleCompiler, publish bool) ([]compiledEntry, [][]byte) {
	entries := make([]compiledEntry, len(keys))
	workers := min(runtime.GOMAXPROCS(0), 4)
	if len(keys) < parallelCompileMin || workers < 2 {
		return entries, compileRange(entries, keys, flags, shared, rc, 0, len(keys), publish)
	}
	var wg sync.WaitGroup
	chunk := (len(keys) + workers - 1) / workers
	parts := make([][][]byte, (len(keys)+chunk-1)/chunk) // one per goroutine, written by it
	for lo := 0; lo < len(keys); lo += chunk {
		hi := min(lo+chunk, len(keys))
		wc := rc.fork()
		part := &parts[lo/chunk]
		wg.Add(1)
		go func() {
			defer wg.Done()
			*part = compileRange(entries, keys, flags, shared, wc, lo, hi, publish)
		}()
	}
	wg.Wait()
	var body [][]byte
	for _, p := range parts {
		body = append(body, p...)
	}
	return entries, body
}

// bodyBlockSize is the size of the blocks a compile writes the canonical body
// into: growing one buffer would copy it repeatedly and keep up to twice its size.
const bodyBlockSize = 64 << 10

// blockWriter appends to a list of fixed-size blocks.
type blockWriter struct{ blocks [][]byte }

func (w *blockWriter) write(p []byte) {
	for len(p) > 0 {
		n := len(w.blocks)
		if n == 0 || len(w.blocks[n-1]) == cap(w.blocks[n-1]) {
			w.blocks = append(w.blocks, make([]byte, 0, bodyBlockSize))
			n++
		}
		b := w.blocks[n-1]
		k := min(len(p), cap(b)-len(b))
		w.blocks[n-1] = append(b, p[:k]...)
		p = p[k:]
	}
}

// compileRange compiles keys[lo:hi] into entries[lo:hi]. When publishing, it
// returns the range's part of the canonical body, in blocks: written once, so
// neither the revision nor a later Canonical encodes the flags again.
func compileRange(entries []compiledEntry, keys []string, flags []*Flag, shared []*compiledFlag, rc *ruleCompiler, lo, hi int, publish bool) [][]byte {
	var enc bytes.Buffer // one entry, reused
	var body blockWriter
	for i := lo; i < hi; i++ {
		key, f := keys[i], flags[i]
		e := &entries[i]
		if shared != nil && shared[i] != nil && !publish {
			cf := *shared[i] // a copy: index is this set's
			e.cf, e.included = &cf, true
			continue
		}
		e.cf, e.structural, e.targeting = compileFlag(key, f, rc)
		if e.cf == nil {
			continue
		}
		if !publish {
			e.included = true
			continue
		}
		if len(e.targeting) > 0 {
			continue
		}
		enc.Reset()
		// rc.scratch holds the flag's metadata keys, sorted, when it has any.
		e.encErr = writeEntry(&enc, key, e.cf, rc.scratch)
		if e.encErr != nil {
			continue
		}
		e.included = true
		body.write(enc.Bytes())
	}
	return body.blocks
}

// smallVariantCount is up to how many variants a linear search beats a map.
const smallVariantCount = 8

// variant finds a variant by name; nil if there is none.
func (f *compiledFlag) variant(name string) *compiledVariant {
	if f.byName != nil {
		return f.byName[name]
	}
	for _, v := range f.variants {
		if v.name == name {
			return v
		}
	}
	return nil
}

// metadata is flag f's result metadata in s. Merging is deferred to the first
// evaluation so loading many flags stays cheap; later calls do not allocate.
func (s *Set) metadata(f *compiledFlag) map[string]any {
	if m := s.flagMeta[f.index].Load(); m != nil {
		return *m
	}
	return s.mergeMetadata(f)
}

func (s *Set) mergeMetadata(f *compiledFlag) map[string]any {
	m := mergeMeta(s.meta, f.def().Metadata)
	s.flagMeta[f.index].CompareAndSwap(nil, &m)
	return *s.flagMeta[f.index].Load()
}

// mergeMeta is the set metadata overlaid with the flag's own; it shares the set
// map when the flag has none.
func mergeMeta(set, flag map[string]any) map[string]any {
	if len(flag) == 0 {
		return set
	}
	m := make(map[string]any, len(set)+len(flag))
	for k, v := range set {
		m[k] = v
	}
	for k, v := range flag {
		m[k] = normalize(v)
	}
	return m
}

// ValidFlagKey tells whether key is an acceptable flag key: non-empty, made of
// Unicode letters (category L), decimal digits (category Nd) and _ - . / :
func ValidFlagKey(key string) bool {
	if key == "" {
		return false
	}
	ascii := true
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.', c == '/', c == ':':
		case c >= 0x80:
			ascii = false
		default:
			return false
		}
	}
	if ascii {
		return true
	}
	for _, r := range key {
		if r < 0x80 {
			if !validASCIIKeyByte(byte(r)) {
				return false
			}
		} else if !isKeyChar(r) {
			return false
		}
	}
	return true
}

func validASCIIKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == '/' || c == ':'
}

// isKeyChar tells whether the non-ASCII r is a letter or decimal digit by the
// fixed table of keychars.go (Unicode 15.0.0), not by this Go's unicode package:
// key validity must not change with the toolchain, nor differ from Python.
func isKeyChar(r rune) bool {
	lo, hi := 0, len(keyCharRanges)/2
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch {
		case r < keyCharRanges[2*m]:
			hi = m
		case r > keyCharRanges[2*m+1]:
			lo = m + 1
		default:
			return true
		}
	}
	return false
}

// compileFlag checks one flag. Structural problems make cf nil; targeting
// problems keep cf with a targeting that yields PARSE_ERROR.
func compileFlag(key string, f *Flag, rc *ruleCompiler) (cf *compiledFlag, structural, targeting Problems) {
	add := func(field, msg string) {
		p := "flags." + key
		if field != "" {
			p += "." + field
		}
		structural = append(structural, Problem{Flag: key, Path: p, Message: msg})
	}
	if !ValidFlagKey(key) {
		add("", fmt.Sprintf("invalid flag key %q: use letters, digits and _ - . / : only", key))
	}
	if f == nil {
		add("", "flag is null")
		return nil, structural, nil
	}
	for _, p := range f.decodeProblems() {
		add(p.field, p.message)
	}
	if f.notObject() {
		return nil, structural, nil
	}
	hasField := func(field string) bool {
		for _, p := range f.decodeProblems() {
			if p.field == field {
				return true
			}
		}
		return false
	}

	if !hasField("state") && f.State != Enabled && f.State != Disabled {
		if f.State == "" {
			add("state", "required (ENABLED or DISABLED)")
		} else {
			add("state", fmt.Sprintf("%q is not a state (want ENABLED or DISABLED)", string(f.State)))
		}
	}

	var cvs []*compiledVariant // sorted by name
	if !hasField("variants") {
		if f.Variants == nil {
			add("variants", "required")
		} else if len(f.Variants) == 0 {
			add("variants", "must not be empty")
		}
		// One pass in map order; names are sorted only when reporting a problem.
		first, mixed, bad := "", false, false
		if shared, ok := rc.variants[mapIdentity(f.Variants)]; ok && f.Variants != nil {
			cvs = shared // compiled before for another flag sharing this map, and fine
		} else {
			cvs = make([]*compiledVariant, 0, len(f.Variants))
			store := make([]compiledVariant, len(f.Variants)) // one allocation for all variants
			i := 0
			for name, v := range f.Variants {
				cv, t := compileVariant(&store[i], name, v)
				i++
				switch {
				case cv == nil:
					bad = true
					continue
				case first == "":
					first = t
				case t != first:
					mixed = true
				}
				cvs = append(cvs, cv)
			}
			slices.SortFunc(cvs, func(a, b *compiledVariant) int { return strings.Compare(a.name, b.name) })
			if bad || mixed {
				byType := map[string][]string{}
				for _, name := range sortedKeys(f.Variants) {
					t := variantType(f.Variants[name])
					if t == "" {
						add("variants."+name, fmt.Sprintf("unsupported value type %s (want boolean, string, number or object)", typeName(f.Variants[name])))
						continue
					}
					byType[t] = append(byType[t], name)
				}
				if len(byType) > 1 {
					parts := make([]string, 0, len(byType))
					for _, t := range sortedKeys(byType) {
						parts = append(parts, fmt.Sprintf("%s (%s)", t, strings.Join(byType[t], ", ")))
					}
					add("variants", "values must all have one type, found "+strings.Join(parts, " and "))
				}
			} else if f.Variants != nil && rc.keepVariants(f.Variants) {
				if rc.variants == nil {
					rc.variants = make(map[unsafe.Pointer][]*compiledVariant)
				}
				rc.variants[mapIdentity(f.Variants)] = cvs
			}
		}
	}

	if hasDefaultVariant(f) && !hasField("variants") && len(f.Variants) > 0 {
		if _, ok := f.Variants[*f.DefaultVariant]; !ok {
			add("defaultVariant", fmt.Sprintf("%q is not a variant (have: %s)", *f.DefaultVariant, strings.Join(sortedKeys(f.Variants), ", ")))
		}
	}

	var metaKeys []string
	var metaSum uint64 // the metadata members' hashes, for the fingerprint
	if len(f.Metadata) > 0 {
		// Reuse one slice across flags: the keys are only needed until the
		// flag's canonical encoding is written (compileRange passes rc.scratch).
		metaKeys = rc.scratch[:0]
		for k, v := range f.Metadata {
			metaKeys = append(metaKeys, k)
			metaSum += hashMember(k, v, 1)
		}
		slices.Sort(metaKeys)
		rc.scratch = metaKeys
	}
	for _, mk := range metaKeys {
		if msg := metadataProblem(mk, f.Metadata[mk]); msg != "" {
			add("metadata."+mk, msg)
		}
	}

	cf = &compiledFlag{key: key, own: *f, disabled: f.State == Disabled, canonicalRule: f.canonicalTargeting()}
	cf.own.parsed = nil // Parse's notes (and decoded targeting) stay with the document
	if !isEmptyTargeting(f.Targeting) {
		n, errs := rc.compileTargeting(f)
		for _, e := range errs {
			targeting = append(targeting, Problem{Flag: key, Path: "flags." + key + ".targeting", Message: e})
		}
		if len(errs) > 0 {
			cf.ruleErr = "targeting cannot be evaluated: " + strings.Join(errs, "; ")
		} else {
			cf.rule = n
		}
	}
	if len(structural) > 0 {
		return nil, structural, targeting
	}
	cf.variants = cvs
	if len(cf.variants) > smallVariantCount {
		cf.byName = make(map[string]*compiledVariant, len(cf.variants))
		for _, v := range cf.variants {
			cf.byName[v.name] = v
		}
	}
	if hasDefaultVariant(f) {
		cf.defVariant = cf.variant(*f.DefaultVariant)
	}
	cf.fingerprint = fingerprintFlag(f, cf.variants, metaSum, cf.canonicalRule)
	return cf, nil, targeting
}

// hasDefaultVariant tells whether the flag names a default variant. Like flagd,
// "defaultVariant": "" means none (the caller's default), unless a variant is
// really named "".
func hasDefaultVariant(f *Flag) bool {
	if f.DefaultVariant == nil {
		return false
	}
	if *f.DefaultVariant != "" {
		return true
	}
	_, ok := f.Variants[""]
	return ok
}

// metadataProblem checks one flag metadata entry; "" means fine.
func metadataProblem(k string, v any) string {
	if !isPrimitive(v) {
		return "must be a string, number or boolean, got " + typeName(v)
	}
	switch k {
	case MetaOwner, MetaDescription, MetaSource:
		if _, ok := v.(string); !ok {
			return "must be a string, got " + typeName(v)
		}
	case MetaExpiresAt:
		ts, ok := v.(string)
		if !ok {
			return "must be an RFC 3339 time string, got " + typeName(v)
		}
		if _, err := time.Parse(time.RFC3339, ts); err != nil {
			return fmt.Sprintf("%q is not an RFC 3339 time", ts)
		}
	}
	return ""
}

func isPrimitive(v any) bool {
	switch typeName(v) {
	case "string", "number", "boolean":
		return true
	}
	return false
}

// variantType is the variant's type name, "" when not allowed.
func variantType(v any) string {
	switch t := typeName(v); t {
	case "boolean", "string", "number", "object":
		return t
	}
	if _, ok := normalize(v).(map[string]any); ok {
		return "object"
	}
	return ""
}

// compileVariant prepares one variant; it returns nil when the value's type is
// not allowed, else the type name (boolean, string, number, object).
func compileVariant(cv *compiledVariant, name string, raw any) (*compiledVariant, string) {
	cv.name = name
	v := normalize(raw)
	cv.raw = v
	// Store v itself (already boxed) rather than re-boxing x: no allocation.
	switch x := v.(type) {
	case bool:
		cv.typ = TypeBoolean
		return cv, "boolean"
	case string:
		cv.typ = TypeString
		return cv, "string"
	case float64:
		cv.typ = TypeFloat
		if x == math.Trunc(x) && x >= -(1<<63) && x < 1<<63 {
			cv.whole = int64(x)
		}
		return cv, "number"
	case map[string]any:
		cv.typ = TypeObject
		return cv, "object"
	}
	return nil, ""
}

func validateSetMetadata(m map[string]any) Problems {
	var ps Problems
	for _, k := range sortedKeys(m) {
		v := m[k]
		path := "metadata." + k
		if !isPrimitive(v) {
			ps = append(ps, Problem{Path: path, Message: "must be a string, number or boolean, got " + typeName(v)})
			continue
		}
		switch k {
		case MetaFlagSetID, MetaVersion:
			if _, ok := v.(string); !ok {
				ps = append(ps, Problem{Path: path, Message: "must be a string, got " + typeName(v)})
			}
		case MetaGeneratedAt:
			ts, ok := v.(string)
			if !ok {
				ps = append(ps, Problem{Path: path, Message: "must be an RFC 3339 time string, got " + typeName(v)})
			} else if _, err := time.Parse(time.RFC3339, ts); err != nil {
				ps = append(ps, Problem{Path: path, Message: fmt.Sprintf("%q is not an RFC 3339 time", ts)})
			}
		case MetaGeneration:
			f, ok := normalize(v).(float64)
			if !ok || f != math.Trunc(f) || f < 0 {
				ps = append(ps, Problem{Path: path, Message: "must be a non-negative integer"})
			}
		}
	}
	return ps
}

// Evaluate resolves a flag for a caller; ctx holds the caller's attributes incl. targetingKey.
func (s *Set) Evaluate(key string, typ Type, defaultValue any, ctx map[string]any) Result {
	return s.evaluate(key, typ, defaultValue, ctx, 0, false)
}

// EvaluateAt is Evaluate with an explicit $flagd.timestamp (unix seconds).
func (s *Set) EvaluateAt(key string, typ Type, defaultValue any, ctx map[string]any, now int64) Result {
	return s.evaluate(key, typ, defaultValue, ctx, now, true)
}

func (s *Set) evaluate(key string, typ Type, def any, ctx map[string]any, now int64, hasNow bool) Result {
	if s == nil { // no snapshot loaded yet: every flag is unknown
		return Result{Value: def, Reason: ReasonError, ErrorCode: CodeFlagNotFound,
			ErrorMessage: fmt.Sprintf("flag %q not found: no flag set loaded", key)}
	}
	f := s.flags[key]
	if f == nil {
		// A constant message: formatting the key in would cost two allocations on a
		// path a caller probing for flags hits as often as the static one (the
		// caller knows the key).
		return Result{Value: def, Reason: ReasonError, ErrorCode: CodeFlagNotFound,
			ErrorMessage: "flag not found", Metadata: s.meta}
	}
	if typ < TypeBoolean || typ > TypeObject {
		return Result{Value: def, Reason: ReasonError, ErrorCode: CodeGeneral,
			ErrorMessage: fmt.Sprintf("unknown value type %d", uint8(typ)), Metadata: s.metadata(f)}
	}
	if f.disabled {
		return Result{Value: def, Reason: ReasonDisabled, Metadata: s.metadata(f)}
	}
	if f.ruleErr != "" {
		return Result{Value: def, Reason: ReasonError, ErrorCode: CodeParseError, ErrorMessage: f.ruleErr, Metadata: s.metadata(f)}
	}
	if f.rule == nil {
		if v := f.defVariant; v != nil { // the hot path, written out: one Result copy less
			if val, ok := v.get(typ); ok {
				return Result{Value: val, Variant: v.name, HasVariant: true, Reason: ReasonStatic, Metadata: s.metadata(f)}
			}
		}
		return s.resolve(f, f.defVariant, ReasonStatic, typ, def)
	}
	// A pooled state: evaluation state escapes through the node interface, and
	// a pool keeps the targeting path free of allocations.
	st := statePool.Get().(*state)
	*st = state{ctx: ctx, flagKey: key, now: now, hasNow: hasNow}
	out, crashed := runRule(f.rule, st)
	*st = state{}
	statePool.Put(st)
	if crashed != nil {
		return Result{Value: def, Reason: ReasonError, ErrorCode: CodeGeneral,
			ErrorMessage: fmt.Sprintf("targeting failed: %v", crashed), Metadata: s.metadata(f)}
	}
	var name string
	switch x := out.(type) {
	case nil:
		if v := f.defVariant; v != nil {
			if val, ok := v.get(typ); ok {
				return Result{Value: val, Variant: v.name, HasVariant: true, Reason: ReasonDefault, Metadata: s.metadata(f)}
			}
		}
		return s.resolve(f, f.defVariant, ReasonDefault, typ, def)
	case string:
		name = x
	case bool:
		name = "false"
		if x {
			name = "true"
		}
	case float64:
		name = FormatNumber(x) // like flagd: the number's JSON text names the variant
	default:
		return Result{Value: def, Reason: ReasonError, ErrorCode: CodeGeneral,
			ErrorMessage: "targeting returned " + typeName(out) + ", not a variant name", Metadata: s.metadata(f)}
	}
	v := f.variant(name)
	if v == nil {
		return Result{Value: def, Reason: ReasonError, ErrorCode: CodeGeneral,
			ErrorMessage: fmt.Sprintf("targeting returned %q, which is not a variant", name), Metadata: s.metadata(f)}
	}
	if val, ok := v.get(typ); ok {
		return Result{Value: val, Variant: v.name, HasVariant: true, Reason: ReasonTargetingMatch, Metadata: s.metadata(f)}
	}
	return s.resolve(f, v, ReasonTargetingMatch, typ, def)
}

// runRule evaluates a rule; a panic (a bug, or a Go value in the context that
// misbehaves) becomes an error result instead of crashing the caller.
func runRule(n node, st *state) (out any, crashed any) {
	defer func() {
		if r := recover(); r != nil {
			crashed = r
		}
	}()
	return n.eval(st), nil
}

// resolve turns a selected variant (nil: none) into a Result of the requested type.
func (s *Set) resolve(f *compiledFlag, v *compiledVariant, reason Reason, typ Type, def any) (r Result) {
	// Filling the named result field by field avoids building and copying a
	// temporary Result on the hot static path.
	r.Metadata = s.metadata(f)
	if v == nil {
		r.Value, r.Reason = def, ReasonDefault
	} else if val, ok := v.get(typ); ok {
		r.Value, r.Variant, r.HasVariant, r.Reason = val, v.name, true, reason
	} else {
		r.Value, r.Reason, r.ErrorCode, r.ErrorMessage = def, ReasonError, CodeTypeMismatch, v.mismatchMessage(typ)
	}
	return r
}

// mismatchMessage explains why the variant's value is not of type t.
func (v *compiledVariant) mismatchMessage(t Type) string {
	if f, ok := v.raw.(float64); ok && t == TypeInteger {
		return fmt.Sprintf("variant %q is %s, not an integer", v.name, FormatNumber(f))
	}
	return fmt.Sprintf("variant %q is %s, not %s", v.name, typeName(v.raw), t)
}

// Keys returns the flag keys, sorted.
func (s *Set) Keys() []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s.keys...)
}

// Len is the number of flags.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

// Flag returns the definition of key as compiled (shared; do not mutate).
func (s *Set) Flag(key string) (*Flag, bool) {
	f, ok := s.flags[key]
	if !ok {
		return nil, false
	}
	return f.def(), true
}

// Document returns the document of the valid flags (shared; do not mutate).
func (s *Set) Document() *Document { return s.doc }

// Metadata returns the flag-set metadata (shared; do not mutate).
func (s *Set) Metadata() map[string]any { return s.meta }

// FlagSetID returns metadata.flagSetId or "".
func (s *Set) FlagSetID() string {
	id, _ := s.meta[MetaFlagSetID].(string)
	return id
}

// Revision returns metadata.version if present, else the computed revision: the
// hex SHA-256 of the canonical encoding of Document() without volatile metadata
// ($schema, metadata.version and metadata keys prefixed "flagsync."). A set
// Compile made computes it on first call; "" means its flags cannot be encoded.
func (s *Set) Revision() string {
	if s.revision != "" || s.lazyRev == nil {
		return s.revision
	}
	s.lazyRev.once.Do(func() {
		s.lazyRev.value, _ = s.computeRevision(s.lazyRev.meta)
	})
	return s.lazyRev.value
}

// Generation returns metadata["flagsync.generation"] or 0.
func (s *Set) Generation() int64 { return s.generation }

// GeneratedAt returns metadata["flagsync.generatedAt"] parsed, if present.
func (s *Set) GeneratedAt() (time.Time, bool) { return s.generatedAt, s.hasGenAt }
