package lint

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/lifecycle"
	"github.com/flagsync/flagsync/sources"
)

// Input is one file to lint, or the merged flags of a daemon's sources.
type Input struct {
	Path string
	Data []byte
	// Provenance, for merged flags (lint --config), says what shaped each flag: its
	// findings then point at where the flag was defined (file:line of the flag file,
	// read again from disk, or the store key such as ssm:/flags/prod/x@3) instead of
	// at Path, and a flag made only of bare store values is not asked for metadata
	// (a bare value has nowhere to put it).
	Provenance map[string]sources.Provenance
	// Unusable are the values the daemon could not use when it merged (they did not
	// parse, did not fit, or made a flag invalid) and so left out: each is an invalid
	// finding at Path, as the merged flags alone cannot show them. Messages must name
	// where the value is and never repeat it (the daemon's problems do both).
	Unusable []flagset.Problem
}

// Finding is one problem. Line is 1-based, 0 when unknown.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	File     string   `json:"file"`
	Line     int      `json:"line,omitempty"`
	Flag     string   `json:"flag,omitempty"`
	Path     string   `json:"path,omitempty"`
	Message  string   `json:"message"`
}

// Lint checks every input (and, for duplicate-key, the inputs against each other,
// in the given order: later files take precedence like later sources) at time now.
// Findings are sorted by file order, line, flag and rule.
func Lint(inputs []Input, cfg Config, now time.Time) ([]Finding, error) {
	c, err := cfg.compile()
	if err != nil {
		return nil, err
	}
	l := &linter{cfg: c, now: now, texts: map[string]string{}}
	seen := map[string]string{} // flag key → first file defining it
	for fileIdx, in := range inputs {
		l.file, l.text, l.fileIdx, l.prov = in.Path, string(in.Data), fileIdx, in.Provenance
		for _, p := range in.Unusable {
			l.addAt(RuleInvalid, p.Flag, p.Path, in.Path, 0, p.Message)
		}
		doc, err := flagset.Parse(in.Data)
		if err != nil {
			l.add(RuleParse, "", "", 0, err.Error())
			continue
		}
		l.document(doc)
		for _, key := range slices.Sorted(maps.Keys(doc.Flags)) {
			if first, ok := seen[key]; ok {
				l.add(RuleDuplicateKey, key, "flags."+key, 0, fmt.Sprintf("flag %q is also defined in %s; with both as sources the later one wins", key, first))
				continue
			}
			seen[key] = in.Path
		}
	}
	sort.SliceStable(l.out, func(i, j int) bool {
		a, b := l.out[i], l.out[j]
		if a.order != b.order {
			return a.order < b.order
		}
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Flag != b.Flag {
			return a.Flag < b.Flag
		}
		return a.Rule < b.Rule
	})
	out := make([]Finding, len(l.out))
	for i, f := range l.out {
		out[i] = f.Finding
	}
	return out, nil
}

type ordered struct {
	Finding
	order int
}

type linter struct {
	cfg     *compiled
	now     time.Time
	file    string
	text    string
	fileIdx int
	prov    map[string]sources.Provenance // of the current input; nil for a file
	texts   map[string]string             // flag files read for provenance lines
	out     []ordered
}

// add files a finding about the current input, at the flag's place in it (or, for
// merged flags, at its origin).
func (l *linter) add(rule, flag, path string, line int, msg string) {
	file := l.file
	switch {
	case l.prov != nil && flag != "":
		file, line = l.origin(flag, path)
	case line == 0 && flag != "":
		line = pathLine(l.text, flag, path)
	}
	l.addAt(rule, flag, path, file, line, msg)
}

// addAt files a finding at file:line, if its rule is on.
func (l *linter) addAt(rule, flag, path, file string, line int, msg string) {
	sev, on := l.cfg.severity[rule]
	if !on {
		return
	}
	l.out = append(l.out, ordered{Finding{Rule: rule, Severity: sev, File: file, Line: line, Flag: flag, Path: path, Message: msg}, l.fileIdx})
}

// origin is where a finding about a merged flag points: the contribution that
// defined it (else its last overlay), as the flag file and the line of path in it,
// or the store key (line 0). A flag without provenance points at the input.
func (l *linter) origin(flag, path string) (string, int) {
	p := l.prov[flag]
	if len(p) == 0 {
		return l.file, 0
	}
	c, ok := p.Definition()
	if !ok {
		c = p[len(p)-1]
	}
	if c.Origin.Scheme != "file" {
		return c.Origin.String(), 0
	}
	name := c.Origin.Location
	text, ok := l.texts[name]
	if !ok {
		// The file as it is now: a finding's line is best effort, like keyLine.
		b, _ := os.ReadFile(name)
		text = string(b)
		l.texts[name] = text
	}
	return name, pathLine(text, flag, path)
}

// bareValuesOnly tells whether flag was made from bare store values alone (no
// definition): it has no metadata to check.
func (l *linter) bareValuesOnly(flag string) bool {
	p, ok := l.prov[flag]
	if !ok {
		return false
	}
	_, defined := p.Definition()
	return !defined
}

func (l *linter) document(doc *flagset.Document) {
	for _, p := range doc.Validate() {
		rule := RuleInvalid
		switch {
		case strings.HasSuffix(p.Path, ".defaultVariant"):
			rule = RuleDefaultVariant
		case strings.Contains(p.Message, "must all have one type"):
			rule = RuleVariantTypes
		case strings.HasSuffix(p.Path, ".metadata."+flagset.MetaExpiresAt):
			rule = RuleExpiryInvalid
		}
		l.add(rule, p.Flag, p.Path, 0, p.Message)
	}
	for _, key := range slices.Sorted(maps.Keys(doc.Flags)) {
		if f := doc.Flags[key]; f != nil {
			l.flag(key, f, doc.Evaluators)
		}
	}
}

func (l *linter) flag(key string, f *flagset.Flag, evaluators map[string]json.RawMessage) {
	if !l.cfg.keyPattern.MatchString(key) {
		msg := fmt.Sprintf("key %q does not match %s", key, l.cfg.keyPattern)
		if l.cfg.keyPattern.String() == DefaultKeyPattern {
			msg = fmt.Sprintf("key %q is not snake_case (lowercase words joined by _, nested levels by /)", key)
			if s := snakeCase(key); s != key && l.cfg.keyPattern.MatchString(s) {
				msg += fmt.Sprintf(", e.g. %q", s)
			}
		}
		l.add(RuleKeyNaming, key, "flags."+key, 0, msg)
	}
	var missing []string
	for _, m := range l.cfg.required {
		if l.bareValuesOnly(key) {
			break
		}
		if v, ok := f.Metadata[m]; !ok || v == nil || v == "" {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		l.add(RuleRequiredMetadata, key, "flags."+key+".metadata", 0, "missing metadata: "+strings.Join(missing, ", "))
	}
	if raw, ok := f.Metadata[flagset.MetaExpiresAt]; ok {
		path := "flags." + key + ".metadata.expiresAt"
		exp, err := lifecycle.ParseExpiry(raw)
		switch {
		case err != nil: // reported by flagset.Validate as expiry-invalid
		case !exp.After(l.now):
			l.add(RuleExpiryPast, key, path, 0, fmt.Sprintf("expired on %s (%s ago): clean up the flag and its code", exp.Format(time.RFC3339), roundDays(l.now.Sub(exp))))
		case exp.Sub(l.now) > l.cfg.maxLifetime:
			l.add(RuleExpiryTooFar, key, path, 0, fmt.Sprintf("expires on %s, more than %s from now: flags are meant to be temporary", exp.Format(time.RFC3339), roundDays(l.cfg.maxLifetime)))
		}
	}
	l.targeting(key, f, evaluators)
}

// snakeCase suggests a snake_case spelling of key: newDashboard → new_dashboard,
// Payments/New-PSP → payments/new_psp.
func snakeCase(key string) string {
	var b strings.Builder
	prevLower := false
	for _, r := range key {
		switch {
		case r >= 'A' && r <= 'Z':
			if prevLower {
				b.WriteByte('_')
			}
			b.WriteRune(r + 'a' - 'A')
			prevLower = false
		case r == '-' || r == '.' || r == ' ':
			b.WriteByte('_')
			prevLower = false
		default:
			b.WriteRune(r)
			prevLower = (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')
		}
	}
	return b.String()
}

func roundDays(d time.Duration) string {
	days := int(math.Round(d.Hours() / 24))
	if days == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", days)
}

// targeting checks what the rules can return and which variants are reachable.
func (l *linter) targeting(key string, f *flagset.Flag, evaluators map[string]json.RawMessage) {
	path := "flags." + key + ".targeting"
	used := map[string]bool{}
	if f.DefaultVariant != nil {
		used[*f.DefaultVariant] = true
	}
	dynamic, targeted := false, false
	if len(f.Targeting) > 0 {
		var rule any
		if err := json.Unmarshal(f.Targeting, &rule); err != nil {
			return // flagset.Validate reports it
		}
		if m, ok := rule.(map[string]any); ok && len(m) > 0 {
			targeted = true
			w := &walker{evaluators: evaluators, seenRefs: map[string]bool{}}
			w.results(rule, 0)
			dynamic = w.dynamic
			for _, lit := range w.literals {
				switch v := lit.(type) {
				case string:
					if _, ok := f.Variants[v]; !ok && len(f.Variants) > 0 {
						l.add(RuleTargetingUnknownVariant, key, path, 0, fmt.Sprintf("targeting returns %q, which is not a variant (have: %s)", v, strings.Join(slices.Sorted(maps.Keys(f.Variants)), ", ")))
					}
					used[v] = true
				case nil: // null: fall back to the default variant
				default:
					l.add(RuleTargetingTypes, key, path, 0, fmt.Sprintf("targeting returns %s %s; it must return variant names (strings)", typeName(v), compact(v)))
				}
			}
			for _, fr := range w.fractionals {
				if msg := fractionalProblem(fr); msg != "" {
					l.add(RuleFractionalWeights, key, path, 0, msg)
				}
			}
		}
		for _, msg := range customOperatorProblems(rule, evaluators) {
			l.add(RuleCustomOperatorArgs, key, path, 0, msg)
		}
	}
	if dynamic || !targeted {
		// A computed result may select any variant. Without targeting, the variants
		// are the choices an operator switches between (defaultVariant, or an overlay
		// such as a kill switch's "true" in SSM): each one is reachable.
		return
	}
	for _, name := range slices.Sorted(maps.Keys(f.Variants)) {
		if !used[name] {
			l.add(RuleUnusedVariant, key, "flags."+key+".variants."+name, 0, fmt.Sprintf("variant %q is never selected (not the default, not returned by the targeting)", name))
		}
	}
}

// walker collects what a JsonLogic rule can evaluate to.
type walker struct {
	evaluators  map[string]json.RawMessage
	seenRefs    map[string]bool
	literals    []any
	fractionals [][]any // the bucket entries of each fractional
	dynamic     bool    // some result is computed (var, cat, ...)
}

const maxWalkDepth = 64

func (w *walker) results(v any, depth int) {
	if depth > maxWalkDepth {
		w.dynamic = true
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		w.literals = append(w.literals, v)
		return
	}
	if len(m) != 1 {
		w.literals = append(w.literals, v)
		return
	}
	for op, rawArgs := range m {
		args, isList := rawArgs.([]any)
		switch op {
		case "if", "?:":
			if !isList {
				w.dynamic = true
				return
			}
			for i := 1; i < len(args); i += 2 {
				w.results(args[i], depth+1)
			}
			if len(args)%2 == 1 && len(args) > 1 {
				w.results(args[len(args)-1], depth+1)
			}
		case "fractional":
			if !isList || len(args) == 0 {
				return
			}
			entries := args
			if _, isEntry := args[0].([]any); !isEntry {
				entries = args[1:]
			}
			w.fractionals = append(w.fractionals, entries)
			for _, e := range entries {
				if arr, ok := e.([]any); ok && len(arr) > 0 {
					w.results(arr[0], depth+1)
				}
			}
		case "$ref":
			name, _ := rawArgs.(string)
			raw, ok := w.evaluators[name]
			if !ok || w.seenRefs[name] {
				w.dynamic = true // unknown refs are flagset.Validate's business
				return
			}
			w.seenRefs[name] = true
			var ev any
			if err := json.Unmarshal(raw, &ev); err != nil {
				w.dynamic = true
				return
			}
			w.results(ev, depth+1)
			delete(w.seenRefs, name)
		default:
			w.dynamic = true
		}
	}
}

// fractionalProblem explains weights that are not a consistent unit: they must be
// whole-number percentages summing to 100, or describe an even split (all weights
// omitted or all equal).
func fractionalProblem(entries []any) string {
	var (
		sum       float64
		weighted  int
		nonInt    bool
		negatives bool
		equal     = true
		first     = math.NaN()
	)
	for _, e := range entries {
		arr, ok := e.([]any)
		if !ok {
			return "" // malformed entries are flagset.Validate's business
		}
		w := 1.0
		if len(arr) >= 2 {
			n, ok := arr[1].(float64)
			if !ok {
				return ""
			}
			w = n
			weighted++
		}
		if w != math.Trunc(w) {
			nonInt = true
		}
		if math.IsNaN(first) {
			first = w
		} else if w != first {
			equal = false
		}
		if w < 0 {
			negatives = true
		}
		sum += w
	}
	switch {
	case negatives:
		return "fractional has a negative weight: the rule evaluates to null, so everyone gets the default variant"
	case nonInt:
		return "fractional weights must be whole numbers: a fractional weight makes the rule evaluate to null, so everyone gets the default variant; use percentages summing to 100"
	case weighted == 0 || (weighted == len(entries) && equal):
		return "" // an even split
	case weighted < len(entries):
		return "fractional mixes weighted and unweighted entries (an unweighted entry weighs 1); give every entry a percentage"
	case sum != 100:
		return fmt.Sprintf("fractional weights sum to %s, not 100: each bucket gets weight/%s of users, not weight%%", flagset.FormatNumber(sum), flagset.FormatNumber(sum))
	}
	return ""
}

func typeName(v any) string {
	switch v.(type) {
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}

// keyLine finds the line where flag key is defined in a JSON or YAML text, best effort:
// the first line that starts (after indentation) with the key, quoted or not, and a colon.
func keyLine(text, key string) int {
	lines := strings.Split(text, "\n")
	start := 0 // flag definitions follow the "flags" key
	flagsKey := regexp.MustCompile(`^\s*(?:"flags"|'flags'|flags)\s*:`)
	for i, line := range lines {
		if flagsKey.MatchString(line) {
			start = i
			break
		}
	}
	re := regexp.MustCompile(`^\s*(?:"` + regexp.QuoteMeta(jsonEscape(key)) + `"|'` + regexp.QuoteMeta(key) + `'|` + regexp.QuoteMeta(key) + `)\s*:`)
	for i := start; i < len(lines); i++ {
		if re.MatchString(lines[i]) {
			return i + 1
		}
	}
	// JSON on one line: the line holding "key":
	needle := `"` + jsonEscape(key) + `"`
	for i, line := range lines {
		if strings.Contains(line, needle) {
			return i + 1
		}
	}
	return 0
}

// pathLine refines keyLine to the field a finding is about: for path
// "flags.<flag>.metadata.expiresAt" it looks for "metadata" and then "expiresAt" below
// the flag's line (deeper indented), keeping the deepest line it finds.
func pathLine(text, flag, path string) int {
	line := keyLine(text, flag)
	rest, ok := strings.CutPrefix(path, "flags."+flag+".")
	if line == 0 || !ok {
		return line
	}
	lines := strings.Split(text, "\n")
	indent := func(s string) int { return len(s) - len(strings.TrimLeft(s, " \t")) }
	base := indent(lines[line-1])
	cur := line
	for _, seg := range strings.Split(rest, ".") {
		re := regexp.MustCompile(`^\s*(?:"` + regexp.QuoteMeta(jsonEscape(seg)) + `"|'` + regexp.QuoteMeta(seg) + `'|` + regexp.QuoteMeta(seg) + `)\s*:`)
		found := 0
		for i := cur; i < len(lines); i++ { // lines[cur] is the line after line cur
			l := lines[i]
			if strings.TrimSpace(l) == "" {
				continue
			}
			if indent(l) <= base {
				break
			}
			if re.MatchString(l) {
				found = i + 1
				break
			}
		}
		if found == 0 {
			break
		}
		cur = found
	}
	return cur
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// semverOperators are the operators sem_ver knows.
var semverOperators = map[string]bool{"=": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true, "^": true, "~": true}

// customOperatorProblems finds flagd operators whose arguments can never work:
// the wrong number of them, or a constant sem_ver operator it does not know.
// Like flagd, the evaluator does not reject them at load: they evaluate to null.
func customOperatorProblems(rule any, evaluators map[string]json.RawMessage) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if depth > maxWalkDepth {
			return
		}
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e, depth+1)
			}
		case map[string]any:
			if len(x) != 1 {
				return // a literal object
			}
			for op, raw := range x {
				args, isList := raw.([]any)
				if !isList {
					args = []any{raw}
				}
				if op == "$ref" {
					name, _ := raw.(string)
					if data, ok := evaluators[name]; ok && !seen[name] {
						seen[name] = true
						var ev any
						if json.Unmarshal(data, &ev) == nil {
							walk(ev, depth+1)
						}
					}
					return
				}
				switch op {
				case "starts_with", "ends_with":
					if len(args) != 2 {
						out = append(out, fmt.Sprintf("%s takes 2 arguments, got %d: it always evaluates to null", op, len(args)))
					}
				case "sem_ver":
					if len(args) != 3 {
						out = append(out, fmt.Sprintf("sem_ver takes 3 arguments, got %d: it always evaluates to null", len(args)))
					} else if o, ok := args[1].(string); ok && !semverOperators[o] {
						out = append(out, fmt.Sprintf("sem_ver operator %q is not one of = != < <= > >= ^ ~: it always evaluates to null", o))
					}
				case "fractional":
					if len(args) == 0 {
						out = append(out, "fractional has no entries: it always evaluates to null")
					}
				}
				walk(raw, depth+1)
			}
		}
	}
	walk(rule, 0)
	return out
}
