package conformance

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/flagsync/flagsync/flagset"
)

const schemaPath = "../docs/schema/flagsync.schema.json"

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	abs, err := filepath.Abs(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat() // expiresAt / generatedAt must be RFC 3339, as flagset validates
	sch, err := c.Compile(abs)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaPath, err)
	}
	return sch
}

// instance decodes a JSON or YAML flag document into the generic form the schema
// validator works on (YAML goes through JSON so numbers and maps look the same).
func instance(t *testing.T, name string, data []byte) any {
	t.Helper()
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		var v any
		if err := yaml.Unmarshal(data, &v); err != nil {
			t.Fatalf("%s: yaml: %v", name, err)
		}
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: yaml to json: %v", name, err)
		}
		data = js
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// TestSchemaAcceptsGoodDocuments: every conformance flag file, every canonical vector
// input and every example flag document (a file flagset loads without problems)
// validate against the schema.
func TestSchemaAcceptsGoodDocuments(t *testing.T) {
	sch := compileSchema(t)
	checked := 0
	files, err := filepath.Glob("flags/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(instance(t, f, data)); err != nil {
			t.Errorf("%s does not match the schema: %v", f, err)
		}
		checked++
	}
	var vecs []struct {
		Name  string `json:"name"`
		Input string `json:"input"`
	}
	data, err := os.ReadFile("vectors/canonical.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &vecs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vecs {
		if err := sch.Validate(instance(t, v.Name, []byte(v.Input))); err != nil {
			t.Errorf("canonical vector %q input does not match the schema: %v", v.Name, err)
		}
		checked++
	}
	err = filepath.WalkDir("../examples", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ext := filepath.Ext(path)
		if ext != ".json" && ext != ".yaml" && ext != ".yml" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		// Only flag documents: other example files (daemon configs, app settings)
		// do not load as a flag set without problems.
		if _, problems, err := flagset.Load(data); err != nil || len(problems) > 0 {
			return nil
		}
		if err := sch.Validate(instance(t, path, data)); err != nil {
			t.Errorf("example %s does not match the schema: %v", path, err)
		}
		checked++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Errorf("only %d documents checked", checked)
	}
}

// TestSchemaRejectsBadDocuments: each bad document fails the schema AND flagset
// reports a problem for it, so the schema and the validator agree.
func TestSchemaRejectsBadDocuments(t *testing.T) {
	sch := compileSchema(t)
	flag := func(body string) string { return `{"flags":{"f":` + body + `}}` }
	bad := map[string]string{
		"wrong state":            flag(`{"state":"ON","variants":{"a":true},"defaultVariant":"a"}`),
		"lowercase state":        flag(`{"state":"enabled","variants":{"a":true}}`),
		"missing state":          flag(`{"variants":{"a":true}}`),
		"empty variants":         flag(`{"state":"ENABLED","variants":{}}`),
		"missing variants":       flag(`{"state":"ENABLED"}`),
		"mixed variant types":    flag(`{"state":"ENABLED","variants":{"a":true,"b":"x"}}`),
		"number and string":      flag(`{"state":"ENABLED","variants":{"a":1,"b":"1"}}`),
		"array variant":          flag(`{"state":"ENABLED","variants":{"a":[1]}}`),
		"null variant":           flag(`{"state":"ENABLED","variants":{"a":null}}`),
		"flag metadata object":   flag(`{"state":"ENABLED","variants":{"a":true},"metadata":{"x":{"y":1}}}`),
		"flag metadata array":    flag(`{"state":"ENABLED","variants":{"a":true},"metadata":{"x":[1]}}`),
		"set metadata object":    `{"flags":{},"metadata":{"x":{"y":1}}}`,
		"set metadata null":      `{"flags":{},"metadata":{"x":null}}`,
		"bad expiresAt":          flag(`{"state":"ENABLED","variants":{"a":true},"metadata":{"expiresAt":"next tuesday"}}`),
		"defaultVariant number":  flag(`{"state":"ENABLED","variants":{"a":true},"defaultVariant":1}`),
		"targeting not object":   flag(`{"state":"ENABLED","variants":{"a":true},"targeting":"a"}`),
		"unknown flag field":     flag(`{"state":"ENABLED","variants":{"a":true},"enabled":true}`),
		"unknown top-level":      `{"flags":{},"extra":1}`,
		"missing flags":          `{"metadata":{"flagSetId":"x"}}`,
		"flag key with space":    `{"flags":{"a b":{"state":"ENABLED","variants":{"a":true}}}}`,
		"empty flag key":         `{"flags":{"":{"state":"ENABLED","variants":{"a":true}}}}`,
		"flag not an object":     `{"flags":{"f":true}}`,
		"generation not integer": `{"flags":{},"metadata":{"flagsync.generation":1.5}}`,
	}
	for name, doc := range bad {
		if err := sch.Validate(instance(t, name, []byte(doc))); err == nil {
			t.Errorf("%s: schema accepts %s", name, doc)
		}
		_, problems, err := flagset.Load([]byte(doc))
		if err == nil && len(problems) == 0 {
			t.Errorf("%s: flagset accepts %s", name, doc)
		}
	}
	good := map[string]string{
		"null defaultVariant": flag(`{"state":"DISABLED","variants":{"a":{"k":[1,null]}},"defaultVariant":null}`),
		"everything": `{"$schema":"x.json","$evaluators":{"r":{"==":[1,1]}},"metadata":{"flagSetId":"s","version":"v","flagsync.generation":3,"flagsync.generatedAt":"2026-01-01T00:00:00Z","n":1.5,"b":true},` +
			`"flags":{"ü.a-b_c/d:1":{"state":"ENABLED","variants":{"x":1,"y":2.5},"defaultVariant":"x","targeting":{"if":[{"$ref":"r"},"y",null]},"metadata":{"owner":"o","expiresAt":"2030-01-01T00:00:00Z","w":2}}}}`,
		"empty targeting": flag(`{"state":"ENABLED","variants":{"a":""},"targeting":{}}`),
	}
	for name, doc := range good {
		if err := sch.Validate(instance(t, name, []byte(doc))); err != nil {
			t.Errorf("%s: schema rejects %s: %v", name, doc, err)
		}
		if _, problems, err := flagset.Load([]byte(doc)); err != nil || len(problems) > 0 {
			t.Errorf("%s: flagset rejects %s: %v %v", name, doc, err, problems)
		}
	}
}

func TestSchemaIsDraft202012(t *testing.T) {
	data, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"$schema": "https://json-schema.org/draft/2020-12/schema"`) {
		t.Error("schema must declare draft 2020-12")
	}
}
