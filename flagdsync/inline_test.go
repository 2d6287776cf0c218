package flagdsync

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestInlineEvaluatorsResolvesNestedRefs(t *testing.T) {
	doc := `{"$evaluators":{"a":{"$ref":"b"},"b":{"in":["$flagd.flagKey",{"var":"k"}]},"loop":{"$ref":"loop"}},` +
		`"flags":{"f":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off",` +
		`"targeting":{"if":[{"$ref":"a"},"on",{"$ref":"missing"}]}},` +
		`"g":{"state":"ENABLED","variants":{"on":true},"defaultVariant":"on"}},"metadata":{"flagSetId":"s"}}`
	out, err := inlineEvaluators([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"flags":{"f":{"defaultVariant":"off","state":"ENABLED","targeting":{"if":[{"in":["$flagd.flagKey",{"var":"k"}]},"on",{"$ref":"missing"}]},` +
		`"variants":{"off":false,"on":true}},"g":{"defaultVariant":"on","state":"ENABLED","variants":{"on":true}}},"metadata":{"flagSetId":"s"}}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
}

func TestInlineEvaluatorsWithoutEvaluatorsIsUnchanged(t *testing.T) {
	doc := `{"flags":{"g":{"defaultVariant":"on","state":"ENABLED","variants":{"on":1e+21}}}}`
	out, err := inlineEvaluators([]byte(doc))
	if err != nil || string(out) != doc {
		t.Fatalf("got %s, %v", out, err)
	}
}

// Evaluators that use each other twice, 40 levels down, would inline to 2^40 copies: the cap
// refuses before anything is encoded.
func TestInlineEvaluatorsCapsGrowth(t *testing.T) {
	var ev []string
	for i := 0; i < 40; i++ {
		ev = append(ev, fmt.Sprintf(`"e%d":{"or":[{"$ref":"e%d"},{"$ref":"e%d"}]}`, i, i+1, i+1))
	}
	ev = append(ev, `"e40":{"var":"x"}`)
	doc := `{"$evaluators":{` + strings.Join(ev, ",") + `},"flags":{"f":{"state":"ENABLED","variants":{"on":true},"defaultVariant":"on","targeting":{"$ref":"e0"}}}}`
	if !json.Valid([]byte(doc)) {
		t.Fatal("test document is not JSON")
	}
	_, err := inlineEvaluators([]byte(doc))
	if err == nil || !strings.Contains(err.Error(), "JSON values") {
		t.Fatalf("want the growth cap, got %v", err)
	}
}

// BenchmarkInlineEvaluators: once per published snapshot, 1,000 flags whose rules use 50
// evaluators that each use the one before (chains up to 50 deep).
func BenchmarkInlineEvaluators(b *testing.B) {
	var ev, flags []string
	ev = append(ev, `"e0":{"in":[{"var":"country"},["de","fr","it"]]}`)
	for i := 1; i < 50; i++ {
		ev = append(ev, fmt.Sprintf(`"e%d":{"or":[{"$ref":"e%d"},{"==":[{"var":"tier"},%d]}]}`, i, i-1, i))
	}
	for i := 0; i < 1000; i++ {
		flags = append(flags, fmt.Sprintf(`"f%d":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off","targeting":{"if":[{"$ref":"e%d"},"on","off"]}}`, i, i%50))
	}
	doc := []byte(`{"$evaluators":{` + strings.Join(ev, ",") + `},"flags":{` + strings.Join(flags, ",") + `}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := inlineEvaluators(doc); err != nil {
			b.Fatal(err)
		}
	}
}
