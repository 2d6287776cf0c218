package daemon

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/sources"
)

// sourceResult is one source's contribution to a merge, in precedence order.
type sourceResult struct {
	name string
	res  *sources.Result
	// fallback are the source's accepted overlays: an overlay that does not fit is
	// replaced by the source's accepted one for the key, when that one still fits.
	fallback map[string]sources.Overlay
}

// mergeProblem is an overlay merge could not apply. Kept tells the source's accepted
// overlay was applied instead; otherwise the flag keeps its lower-precedence form.
type mergeProblem struct {
	flagset.Problem
	Source string
	Kept   bool
}

// merge combines source results, later sources taking precedence (see docs/FORMAT.md
// "Overlays"). It never mutates the results: they are kept as last-good values.
// Problems name the flag and the source; a flag whose overlay does not fit keeps the
// source's accepted overlay (fallback), else its lower-precedence form.
func merge(results []sourceResult) (*flagset.Document, []mergeProblem) {
	return mergeTracing(results, nil)
}

// mergeWithProvenance is merge that also says, per flag, which contributions shaped
// it (lint findings, the cleanup's deletions). Syncs do not need it and skip its
// allocations (one slice per flag).
func mergeWithProvenance(results []sourceResult) (*flagset.Document, map[string]sources.Provenance) {
	prov := map[string]sources.Provenance{}
	doc, _ := mergeTracing(results, prov)
	return doc, prov
}

// mergeTracing is merge, recording provenance into prov unless it is nil.
func mergeTracing(results []sourceResult, prov map[string]sources.Provenance) (*flagset.Document, []mergeProblem) {
	doc := &flagset.Document{Flags: map[string]*flagset.Flag{}, Evaluators: map[string]json.RawMessage{}}
	var problems []mergeProblem
	track := func(key string, c sources.Contribution, replace bool) {
		switch {
		case prov == nil:
		case replace:
			prov[key] = sources.Provenance{c}
		default:
			prov[key] = append(prov[key], c)
		}
	}
	for _, sr := range results {
		if sr.res == nil {
			continue
		}
		for name, ev := range sr.res.Evaluators {
			doc.Evaluators[name] = ev
		}
		for key, def := range sr.res.Definitions {
			if def != nil {
				doc.Flags[key] = def
				track(key, sources.Contribution{Source: sr.name, Origin: sr.res.Origins[key], Definition: true}, true)
			}
		}
		for _, key := range slices.Sorted(maps.Keys(sr.res.Overlays)) {
			ov := sr.res.Overlays[key]
			f, err := overlayFlag(doc.Flags[key], ov)
			if err == nil {
				doc.Flags[key] = f
				track(key, sources.Contribution{Source: sr.name, Origin: ov.Origin}, false)
				continue
			}
			mp := mergeProblem{Source: sr.name, Problem: flagset.Problem{Flag: key, Path: "flags." + key,
				Message: fmt.Sprintf("overlay from %s ignored: %v", originOr(ov, sr.name), err)}}
			if prev, ok := sr.fallback[key]; ok && !sameOverlay(prev, ov) {
				if f, err := overlayFlag(doc.Flags[key], prev); err == nil {
					doc.Flags[key], mp.Kept = f, true
					track(key, sources.Contribution{Source: sr.name, Origin: prev.Origin}, false)
				}
			}
			problems = append(problems, mp)
		}
	}
	if len(doc.Evaluators) == 0 {
		doc.Evaluators = nil
	}
	return doc, problems
}

// overlayFlag applies ov to base, or makes a static flag of it when base is nil.
func overlayFlag(base *flagset.Flag, ov sources.Overlay) (*flagset.Flag, error) {
	if base != nil {
		return applyOverlay(base, ov)
	}
	return staticFlag(ov)
}

func originOr(ov sources.Overlay, name string) string {
	if !ov.Origin.IsZero() {
		return ov.Origin.String()
	}
	return "source " + name
}

// applyOverlay returns a copy of base with the overlay applied.
func applyOverlay(base *flagset.Flag, ov sources.Overlay) (*flagset.Flag, error) {
	f := *base
	f.Metadata = make(map[string]any, len(base.Metadata)+1)
	for k, v := range base.Metadata {
		f.Metadata[k] = v
	}
	if ov.HasValue {
		name, err := variantFor(base.Variants, ov.Value)
		if err != nil {
			return nil, err
		}
		f.DefaultVariant = &name
		f.State = flagset.Enabled
	}
	if ov.DefaultVariant != nil {
		if _, ok := base.Variants[*ov.DefaultVariant]; !ok {
			// The requested name is not repeated: source values are not for logs.
			return nil, fmt.Errorf("the defaultVariant names no variant (variants: %s)", strings.Join(slices.Sorted(maps.Keys(base.Variants)), ", "))
		}
		dv := *ov.DefaultVariant
		f.DefaultVariant = &dv
	}
	if ov.State != nil {
		f.State = *ov.State
	}
	if !ov.Origin.IsZero() {
		// metadata.source is display (docs/FORMAT.md): the definition's source, then
		// each overlay's origin, joined with "+". Code that acts on where a flag came
		// from uses merge's Provenance instead.
		if src, ok := base.Metadata[flagset.MetaSource].(string); ok && src != "" {
			f.Metadata[flagset.MetaSource] = src + "+" + ov.Origin.String()
		} else {
			f.Metadata[flagset.MetaSource] = ov.Origin.String()
		}
	}
	return &f, nil
}

// variantFor finds the variant a bare value selects: the variant whose value equals
// it, or for a string that equals no value, the variant of that name.
func variantFor(variants map[string]any, v any) (string, error) {
	names := slices.Sorted(maps.Keys(variants))
	for _, n := range names {
		if scalarEqual(variants[n], v) {
			return n, nil
		}
	}
	if s, ok := v.(string); ok {
		if _, ok := variants[s]; ok {
			return s, nil
		}
	}
	// The value itself is not repeated: source values are not for logs.
	return "", fmt.Errorf("the %s value matches no variant value or name (variants: %s)", typeName(v), strings.Join(names, ", "))
}

func scalarEqual(a, b any) bool {
	switch x := a.(type) {
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case int:
		y, ok := b.(float64)
		return ok && float64(x) == y
	case int64:
		y, ok := b.(float64)
		return ok && float64(x) == y
	}
	return false
}

func typeName(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// staticFlag creates a flag from an overlay when no lower-precedence source defines
// the key. Only a bare value can: a patch has nothing to patch.
func staticFlag(ov sources.Overlay) (*flagset.Flag, error) {
	if !ov.HasValue {
		return nil, fmt.Errorf("a patch (state/defaultVariant) needs a lower-precedence source that defines the flag")
	}
	var variants map[string]any
	var def string
	switch v := ov.Value.(type) {
	case bool:
		variants = map[string]any{"on": true, "off": false}
		def = "off"
		if v {
			def = "on"
		}
	case string:
		variants = map[string]any{v: v}
		def = v
	case float64:
		variants = map[string]any{"value": v}
		def = "value"
	default:
		return nil, fmt.Errorf("unsupported %T value", ov.Value)
	}
	f := &flagset.Flag{State: flagset.Enabled, Variants: variants, DefaultVariant: &def}
	if ov.State != nil {
		f.State = *ov.State
	}
	if !ov.Origin.IsZero() {
		f.Metadata = map[string]any{flagset.MetaSource: ov.Origin.String()}
	}
	return f, nil
}
