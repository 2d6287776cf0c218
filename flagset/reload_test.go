package flagset

import (
	"reflect"
	"strings"
	"testing"
)

// sameAsLoad fails unless Reload(prev, data) gives what Load(data) gives: the
// error, the problems, the flags (by canonical encoding), the revision and, for
// every flag, the results of a few evaluations.
func sameAsLoad(t testing.TB, prev *Set, data []byte) *Set {
	t.Helper()
	want, wantPs, wantErr := Load(data)
	got, gotPs, gotErr := Reload(prev, data)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("Reload error %v, Load error %v", gotErr, wantErr)
	}
	if wantErr != nil {
		return nil
	}
	if !reflect.DeepEqual(problemTexts(gotPs), problemTexts(wantPs)) {
		t.Fatalf("Reload problems\n%v\nLoad problems\n%v", gotPs, wantPs)
	}
	wantDoc, err1 := want.Canonical()
	gotDoc, err2 := got.Canonical()
	if string(gotDoc) != string(wantDoc) || (err1 == nil) != (err2 == nil) {
		t.Fatalf("Reload set\n%s (%v)\nLoad set\n%s (%v)", gotDoc, err2, wantDoc, err1)
	}
	if got.Revision() != want.Revision() {
		t.Fatalf("Reload revision %s, Load revision %s", got.Revision(), want.Revision())
	}
	if a, r, c := Diff(want, got); len(a)+len(r)+len(c) > 0 {
		t.Fatalf("Diff(Load, Reload) = added %v removed %v changed %v, want none", a, r, c)
	}
	ctxs := []map[string]any{nil, {"targetingKey": "u-1", "email": "a@x.com", "country": "CH", "v": "1.2.3"}}
	for _, key := range want.Keys() {
		for _, typ := range []Type{TypeBoolean, TypeString, TypeFloat, TypeObject} {
			for _, ctx := range ctxs {
				w, g := want.EvaluateAt(key, typ, nil, ctx, 1), got.EvaluateAt(key, typ, nil, ctx, 1)
				if !reflect.DeepEqual(w, g) {
					t.Fatalf("flag %s as %v: Reload gives %+v, Load gives %+v", key, typ, g, w)
				}
			}
		}
	}
	return got
}

func problemTexts(ps Problems) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Error()
	}
	return out
}

const reloadBase = `{"$evaluators":{"ch":{"==":[{"var":"country"},"CH"]}},"flags":{
"plain":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off"},
"refd":{"state":"ENABLED","variants":{"on":"yes","off":"no"},"defaultVariant":"off","targeting":{"if":[{"$ref":"ch"},"on","off"]}},
"broken":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off","targeting":{"nope":[1]}},
"typed":{"state":"ENABLED","variants":{"on":1,"off":0},"defaultVariant":"off","metadata":{"owner":"a"}}},
"metadata":{"flagSetId":"t","flagsync.generation":1}}`

func TestReloadSharesOnlyIdenticalFlags(t *testing.T) {
	prev, ps, err := Load([]byte(reloadBase))
	if err != nil || len(ps) != 1 || ps[0].Flag != "broken" {
		t.Fatalf("base: %v %v", ps, err)
	}
	next := strings.Replace(reloadBase, `"flagsync.generation":1`, `"flagsync.generation":2`, 1)
	s := sameAsLoad(t, prev, []byte(next))
	for _, key := range []string{"plain", "refd", "typed"} {
		if s.flags[key].own.Variants == nil || reflect.ValueOf(s.flags[key].own.Variants).Pointer() != reflect.ValueOf(prev.flags[key].own.Variants).Pointer() {
			t.Errorf("%s: not shared with the served set", key)
		}
	}
	// A flag with targeting problems is compiled (and reported) again.
	if s.flags["broken"].own.Variants != nil && reflect.ValueOf(s.flags["broken"].own.Variants).Pointer() == reflect.ValueOf(prev.flags["broken"].own.Variants).Pointer() {
		t.Error("broken: shared, so its problems would not be reported again")
	}

	for name, edit := range map[string][2]string{
		"value of another type":  {`"variants":{"on":1,"off":0}`, `"variants":{"on":true,"off":0}`},
		"changed metadata":       {`"metadata":{"owner":"a"}`, `"metadata":{"owner":"b"}`},
		"same flag, other space": {`"plain":{"state":"ENABLED",`, `"plain":{"state": "ENABLED",`},
		"evaluator changed":      {`"CH"]}}`, `"DE"]}}`},
		"evaluator broken":       {`{"==":[{"var":"country"},"CH"]}`, `{"nope":[]}`},
		"evaluator removed":      {`"$evaluators":{"ch":{"==":[{"var":"country"},"CH"]}},`, ``},
		"later duplicate key":    {`"metadata":{"flagSetId"`, `"flags":{"plain":{"state":"DISABLED","variants":{"on":true,"off":false}}},"metadata":{"flagSetId"`},
		"duplicate, same text":   {`"metadata":{"owner":"a"}}}`, `"metadata":{"owner":"a"}},"plain":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off"}}`},
		"flag removed":           {`"plain":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off"},`, ``},
		"not JSON any more":      {`"flags":{`, `"flags":{{`},
	} {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(next, edit[0]) {
				t.Fatalf("edit %q not found", edit[0])
			}
			sameAsLoad(t, prev, []byte(strings.Replace(next, edit[0], edit[1], 1)))
		})
	}
}

// FuzzReload: whatever the served set and the new text, Reload gives what Load gives.
func FuzzReload(f *testing.F) {
	for _, d := range fuzzDocs {
		f.Add([]byte(d), []byte(d))
		f.Add([]byte(reloadBase), []byte(d))
	}
	f.Add([]byte(reloadBase), []byte(strings.Replace(reloadBase, `"CH"`, `"DE"`, 1)))
	f.Fuzz(func(t *testing.T, served, data []byte) {
		prev, _, err := Load(served)
		if err != nil {
			prev = nil
		}
		sameAsLoad(t, prev, data)
	})
}
