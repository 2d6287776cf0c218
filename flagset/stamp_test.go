package flagset

import (
	"testing"
	"time"
)

const stampDoc = `{"flags":{
 "plain":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"on"},
 "owned":{"state":"ENABLED","variants":{"a":"x","b":"y"},"defaultVariant":"a","metadata":{"owner":"team-a"},
   "targeting":{"if":[{"==":[{"var":"k"},1]},"b",null]}},
 "broken":{"state":"ENABLED","variants":{"on":true},"defaultVariant":"on","targeting":{"no_such_op":[1]}}
},"metadata":{"flagSetId":"one"}}`

func TestWithMetadataStampsWithoutRecompiling(t *testing.T) {
	base, _, err := Load([]byte(stampDoc))
	if err != nil {
		t.Fatal(err)
	}
	// Evaluate first so the base set has merged (and cached) its flag metadata.
	if r := base.Evaluate("owned", TypeString, "", nil); r.Metadata[MetaFlagSetID] != "one" || r.Metadata[MetaOwner] != "team-a" {
		t.Fatalf("base metadata = %v", r.Metadata)
	}
	at := "2026-01-02T03:04:05Z"
	st := base.WithMetadata(map[string]any{MetaFlagSetID: "two", MetaVersion: "rev-9", MetaGeneration: float64(7), MetaGeneratedAt: at})
	if st.Revision() != "rev-9" || st.Generation() != 7 || st.FlagSetID() != "two" {
		t.Errorf("stamped: revision %q generation %d id %q", st.Revision(), st.Generation(), st.FlagSetID())
	}
	if ts, ok := st.GeneratedAt(); !ok || !ts.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("GeneratedAt = %v %v", ts, ok)
	}
	for _, key := range []string{"plain", "owned"} {
		r := st.Evaluate(key, TypeString, "", map[string]any{"k": 1})
		if r.Metadata[MetaFlagSetID] != "two" || r.Metadata[MetaVersion] != "rev-9" || r.Metadata[MetaGeneration] != float64(7) {
			t.Errorf("%s: stamped metadata = %v", key, r.Metadata)
		}
		if key == "owned" && (r.Metadata[MetaOwner] != "team-a" || r.Value != "y" || r.Reason != ReasonTargetingMatch) {
			t.Errorf("owned: %+v", r)
		}
	}
	if r := st.Evaluate("missing", TypeBoolean, false, nil); r.Metadata[MetaVersion] != "rev-9" {
		t.Errorf("not found metadata = %v", r.Metadata)
	}
	// The base set is unchanged, and the flags are shared, not copied.
	if r := base.Evaluate("owned", TypeString, "", nil); r.Metadata[MetaFlagSetID] != "one" || r.Metadata[MetaVersion] != nil {
		t.Errorf("base metadata changed: %v", r.Metadata)
	}
	if base.flags["owned"] != st.flags["owned"] || st.Len() != base.Len() {
		t.Error("WithMetadata copied the compiled flags")
	}
	if st.Document().Metadata[MetaVersion] != "rev-9" || base.Document().Metadata[MetaVersion] != nil {
		t.Errorf("documents: %v / %v", st.Document().Metadata, base.Document().Metadata)
	}
	// Without a version the revision stays the base's.
	if again := base.WithMetadata(map[string]any{MetaFlagSetID: "one"}); again.Revision() != base.Revision() || again.Generation() != 0 {
		t.Errorf("unversioned stamp: %q (base %q) generation %d", again.Revision(), base.Revision(), again.Generation())
	}
	// A stamped set encodes like the document it stands for.
	b, err := canonicalDocument(st.Document())
	if err != nil {
		t.Fatal(err)
	}
	reloaded, problems, err := Load(b)
	// Compile (not strict) keeps "broken" with its targeting problem.
	if err != nil || len(problems) != 1 || problems[0].Flag != "broken" || reloaded.Revision() != "rev-9" || reloaded.Len() != st.Len() {
		t.Fatalf("reload: %v %v %v", reloaded, problems, err)
	}
}

func TestCompileStrictLeavesOutTargetingProblems(t *testing.T) {
	doc, err := Parse([]byte(stampDoc))
	if err != nil {
		t.Fatal(err)
	}
	lax, laxProblems := Compile(doc)
	strict, problems := CompileStrict(doc)
	if _, ok := lax.Flag("broken"); !ok {
		t.Fatal("Compile dropped a flag with only targeting problems")
	}
	if _, ok := strict.Flag("broken"); ok || strict.Len() != 2 {
		t.Fatalf("CompileStrict kept %v", strict.Keys())
	}
	if len(problems) != len(laxProblems) || len(problems) == 0 || problems[0].Flag != "broken" {
		t.Errorf("problems = %v, Compile's = %v", problems, laxProblems)
	}
	clean := *doc
	clean.Flags = map[string]*Flag{"plain": doc.Flags["plain"], "owned": doc.Flags["owned"]}
	want, err := documentRevision(&clean)
	if err != nil {
		t.Fatal(err)
	}
	if strict.Revision() != want || lax.Revision() == want {
		t.Errorf("revision = %s, want %s (Compile's %s)", strict.Revision(), want, lax.Revision())
	}
	for _, key := range strict.Keys() {
		if r := strict.Evaluate(key, TypeString, "", nil); r.Metadata[MetaFlagSetID] != "one" {
			t.Errorf("%s metadata = %v", key, r.Metadata)
		}
	}
}

func TestSetCanonicalReusesCompileEncodings(t *testing.T) {
	docText := `{"$schema":"https://example.com/s.json","$evaluators":{"vip":{"in":[{"var":"email"},["a@x.io"]]}},"flags":{
 "z":{"state":"DISABLED","variants":{"n":1.5,"m":2},"defaultVariant":"m","metadata":{"owner":"é\u2028"}},
 "a":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"on","targeting":{"if":[{"$ref":"vip"},"off",null]}},
 "bad":{"state":"ENABLED","variants":{"on":true},"defaultVariant":"on","targeting":{"nope":[]}},
 "worse":{"state":"MAYBE","variants":{"on":true},"defaultVariant":"on"}
},"metadata":{"flagSetId":"c"}}`
	for _, min := range []int{2000, 1} { // sequential and parallel compile
		parallelCompileMin = min
		doc, err := Parse([]byte(docText))
		if err != nil {
			t.Fatal(err)
		}
		lax, _ := Compile(doc)
		strict, _ := CompileStrict(doc)
		stamped := strict.WithMetadata(map[string]any{MetaFlagSetID: "c", MetaVersion: "v1", MetaGeneration: float64(3)})
		empty, _ := Compile(&Document{})
		for name, s := range map[string]*Set{"lax": lax, "strict": strict, "stamped": stamped, "empty": empty} {
			got, err := s.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			want, err := canonicalDocument(s.Document())
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("parallel from %d, %s:\n got %s\nwant %s", min, name, got, want)
			}
			if rev, _ := documentRevision(s.Document()); name != "stamped" && rev != s.Revision() {
				t.Errorf("parallel from %d, %s: revision %s, documentRevision(document) %s", min, name, s.Revision(), rev)
			}
		}
	}
	parallelCompileMin = 2000
}

func TestIdenticalVariantsAreShared(t *testing.T) {
	doc, err := Parse([]byte(`{"flags":{
 "a":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"on"},
 "b":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off","targeting":{"if":[{"==":[{"var":"k"},1]},"on",null]}},
 "c":{"state":"ENABLED","variants":{"off":false,"on":true},"defaultVariant":"off"},
 "o":{"state":"ENABLED","variants":{"x":{"n":1}},"defaultVariant":"x"},
 "p":{"state":"ENABLED","variants":{"x":{"n":1}},"defaultVariant":"x"}
}}`))
	if err != nil {
		t.Fatal(err)
	}
	same := func(x, y string) bool {
		return mapIdentity(doc.Flags[x].Variants) == mapIdentity(doc.Flags[y].Variants)
	}
	if !same("a", "b") || same("a", "c") || same("o", "p") {
		t.Errorf("sharing: a=b %v, a=c %v (written differently), o=p %v (objects)", same("a", "b"), same("a", "c"), same("o", "p"))
	}
	s, problems := Compile(doc)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if &s.flags["a"].variants[0] != &s.flags["b"].variants[0] {
		t.Error("flags sharing a Variants map do not share compiled variants")
	}
	for _, c := range []struct {
		key  string
		ctx  map[string]any
		want bool
	}{{"a", nil, true}, {"b", nil, false}, {"b", map[string]any{"k": 1}, true}, {"c", nil, false}} {
		if r := s.Evaluate(c.key, TypeBoolean, nil, c.ctx); r.Value != c.want || r.ErrorCode != CodeNone {
			t.Errorf("%s %v: %+v", c.key, c.ctx, r)
		}
	}
	if r := s.Evaluate("a", TypeString, "d", nil); r.ErrorCode != CodeTypeMismatch || r.Value != "d" {
		t.Errorf("type mismatch: %+v", r)
	}
}
