package daemon

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/sources"
)

func ptr[T any](v T) *T { return &v }

func boolFlag(def string) *flagset.Flag {
	return &flagset.Flag{State: flagset.Enabled, Variants: map[string]any{"on": true, "off": false},
		DefaultVariant: ptr(def), Targeting: []byte(`{"if":[{"==":[{"var":"role"},"staff"]},"on","off"]}`),
		Metadata: map[string]any{"owner": "team", "source": "file:flags.yaml"}}
}

func TestMergeOverlays(t *testing.T) {
	gitOrigin := sources.Origin{Scheme: "file", Location: "flags.yaml"}
	git := &sources.Result{Origins: map[string]sources.Origin{"beta": gitOrigin, "nomatch": gitOrigin, "replaced": gitOrigin}, Definitions: map[string]*flagset.Flag{
		"beta":     boolFlag("off"),
		"color":    {State: flagset.Enabled, Variants: map[string]any{"blue": "#00f", "green": "#0f0"}, DefaultVariant: ptr("blue")},
		"limit":    {State: flagset.Enabled, Variants: map[string]any{"low": 10.0, "high": 100.0}, DefaultVariant: ptr("low")},
		"kill":     boolFlag("on"),
		"nomatch":  boolFlag("off"),
		"badpatch": boolFlag("off"),
		"replaced": boolFlag("off"),
	}}
	ops := &sources.Result{
		Definitions: map[string]*flagset.Flag{
			"replaced": {State: flagset.Enabled, Variants: map[string]any{"a": "a"}, DefaultVariant: ptr("a")},
		},
		Overlays: map[string]sources.Overlay{
			"beta":     {Value: true, HasValue: true, Origin: sources.Origin{Scheme: "env", Location: "B"}},
			"color":    {Value: "green", HasValue: true, Origin: sources.Origin{Scheme: "env", Location: "C"}}, // by variant name
			"limit":    {Value: 100.0, HasValue: true, Origin: sources.Origin{Scheme: "env", Location: "L"}},   // by value
			"kill":     {State: ptr(flagset.Disabled), Origin: sources.Origin{Scheme: "env", Location: "K"}},
			"nomatch":  {Value: "maybe", HasValue: true, Origin: sources.Origin{Scheme: "env", Location: "N"}},
			"badpatch": {DefaultVariant: ptr("middle"), Origin: sources.Origin{Scheme: "env", Location: "P"}},
			"newbool":  {Value: false, HasValue: true, Origin: sources.Origin{Scheme: "env", Location: "NB"}},
			"newstr":   {Value: "v2", HasValue: true, Origin: sources.Origin{Scheme: "env", Location: "NS"}},
			"newnum":   {Value: 3.5, HasValue: true, Origin: sources.Origin{Scheme: "env", Location: "NN"}},
			"orphan":   {State: ptr(flagset.Disabled), Origin: sources.Origin{Scheme: "env", Location: "O"}},
		},
	}
	before := *git.Definitions["beta"]
	results := []sourceResult{{name: "git", res: git}, {name: "ops", res: ops}}
	doc, problems := merge(results)
	traced, prov := mergeWithProvenance(results)
	if !maps.EqualFunc(traced.Flags, doc.Flags, func(a, b *flagset.Flag) bool { return *a.DefaultVariant == *b.DefaultVariant && a.State == b.State }) {
		t.Error("merge and mergeWithProvenance merged differently")
	}

	// Provenance lists what shaped each flag, typed, in the order applied.
	for key, want := range map[string]sources.Provenance{
		"beta":     {{Source: "git", Origin: gitOrigin, Definition: true}, {Source: "ops", Origin: sources.Origin{Scheme: "env", Location: "B"}}},
		"nomatch":  {{Source: "git", Origin: gitOrigin, Definition: true}}, // the overlay did not fit
		"newstr":   {{Source: "ops", Origin: sources.Origin{Scheme: "env", Location: "NS"}}},
		"replaced": {{Source: "ops", Definition: true}},
	} {
		if got := prov[key]; !slices.Equal(got, want) {
			t.Errorf("provenance of %s = %+v, want %+v", key, got, want)
		}
	}
	if _, ok := prov["orphan"]; ok {
		t.Error("provenance for a flag merge did not create")
	}

	if f := doc.Flags["beta"]; *f.DefaultVariant != "on" || f.State != flagset.Enabled || string(f.Targeting) != string(before.Targeting) ||
		f.Metadata["owner"] != "team" || f.Metadata["source"] != "file:flags.yaml+env:B" {
		t.Errorf("beta = %+v", f)
	}
	if *git.Definitions["beta"].DefaultVariant != "off" || git.Definitions["beta"].Metadata["source"] != "file:flags.yaml" {
		t.Error("merge mutated the source result")
	}
	if f := doc.Flags["color"]; *f.DefaultVariant != "green" {
		t.Errorf("color default = %s", *f.DefaultVariant)
	}
	if f := doc.Flags["limit"]; *f.DefaultVariant != "high" {
		t.Errorf("limit default = %s", *f.DefaultVariant)
	}
	if f := doc.Flags["kill"]; f.State != flagset.Disabled || *f.DefaultVariant != "on" {
		t.Errorf("kill = %+v", f)
	}
	if f := doc.Flags["nomatch"]; *f.DefaultVariant != "off" || f.Metadata["source"] != "file:flags.yaml" {
		t.Errorf("nomatch must keep its lower-precedence form, got %+v", f)
	}
	if f := doc.Flags["badpatch"]; *f.DefaultVariant != "off" {
		t.Errorf("badpatch = %+v", f)
	}
	if f := doc.Flags["replaced"]; *f.DefaultVariant != "a" {
		t.Errorf("replaced = %+v", f)
	}
	if f := doc.Flags["newbool"]; *f.DefaultVariant != "off" || f.Variants["on"] != true || f.Variants["off"] != false {
		t.Errorf("newbool = %+v", f)
	}
	if f := doc.Flags["newstr"]; *f.DefaultVariant != "v2" || f.Variants["v2"] != "v2" || f.Metadata["source"] != "env:NS" {
		t.Errorf("newstr = %+v", f)
	}
	if f := doc.Flags["newnum"]; *f.DefaultVariant != "value" || f.Variants["value"] != 3.5 {
		t.Errorf("newnum = %+v", f)
	}
	if _, ok := doc.Flags["orphan"]; ok {
		t.Error("a patch without a definition must not create a flag")
	}
	got := map[string]string{}
	for _, p := range problems {
		got[p.Flag] = p.Message
	}
	if len(problems) != 3 || !strings.Contains(got["nomatch"], "matches no variant") ||
		!strings.Contains(got["badpatch"], "defaultVariant names no variant") || !strings.Contains(got["orphan"], "needs a lower-precedence source") {
		t.Errorf("problems = %+v", problems)
	}
	if strings.Contains(got["nomatch"], "maybe") {
		t.Error("a problem repeats the source value")
	}
	// Every flag merge produced is valid.
	if _, probs := flagset.Compile(doc); len(probs) != 0 {
		t.Errorf("merged document invalid: %v", probs)
	}
}
