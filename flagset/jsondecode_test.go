package flagset

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// decodeJSON decodes any JSON value with the package's decoder (tests compare
// it with encoding/json).
func decodeJSON(data []byte) (any, error) {
	d := jsonDecoder{data: data, intern: make(map[string]string)}
	d.skipSpace()
	v, err := d.value()
	if err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.pos != len(d.data) {
		return nil, d.errorf("unexpected %q after the top-level value", d.data[d.pos])
	}
	return v, nil
}

// checkDecodeLikeStdlib fails when the decoder and encoding/json disagree.
func checkDecodeLikeStdlib(t *testing.T, in string) {
	t.Helper()
	if !utf8.ValidString(in) {
		return // Parse rejects invalid UTF-8 before decoding
	}
	got, err := decodeJSON([]byte(in))
	var want any
	wantErr := json.Unmarshal([]byte(in), &want)
	if errors.Is(err, errTooDeep) {
		return
	}
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%q: err = %v, encoding/json err = %v", in, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: got %#v, encoding/json %#v", in, got, want)
	}
}

func TestDecodeJSONLikeStdlib(t *testing.T) {
	cases := []string{
		`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `-0.0`, `1`, `-12.5e3`, `1E+2`, `0.000001`,
		`123456789012345678901234567890`, `1e308`, `1e400`, `-`, `01`, `1.`, `.5`, `1e`, `+1`, `NaN`,
		`"a\"b\\c\/d\b\f\n\r\t"`, `"\u00e9\u2028"`, `"\ud83d\ude00"`, `"\ud800"`, `"\ud800\u0041"`, `"\udc00x"`,
		`"\x"`, `"\u12"`, `"abc`, "\"a\tb\"", `"Zürich ☀"`,
		`{"a":1,"a":2}`, `{"a":[1,{"b":null}],"c":"d"}`, ` { "a" : [ 1 , 2 ] } `, `{"a":1,}`, `[1,]`,
		`{"a" 1}`, `{1:2}`, `[1 2]`, `{"a":1}x`, `tru`, `nul`, `[`, `{"a":`, ``, `  `,
	}
	for _, c := range cases {
		checkDecodeLikeStdlib(t, c)
	}
	if _, err := decodeJSON([]byte(strings.Repeat("[", 65) + strings.Repeat("]", 65))); !errors.Is(err, errTooDeep) {
		t.Fatalf("depth 65: err = %v", err)
	}
	if _, err := decodeJSON([]byte(strings.Repeat("[", 64) + strings.Repeat("]", 64))); err != nil {
		t.Fatalf("depth 64: err = %v", err)
	}
}

// FuzzDecodeJSON: the fast decoder agrees with encoding/json.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5,"x\u00e9",null,true]}`, `"\ud83d\ude00"`, `-0.0e-5`, `[{}]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		checkDecodeLikeStdlib(t, in)
	})
}
