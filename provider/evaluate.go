package provider

import (
	"context"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/flagsync/flagsync/flagset"
)

// The typed methods below are written out instead of sharing a generic helper:
// boxing a generic T into `any` allocates, boxing a concrete bool does not, and the
// static boolean path must stay allocation-free.

// BooleanEvaluation resolves a boolean flag.
func (p *Provider) BooleanEvaluation(_ context.Context, flag string, def bool, flatCtx openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	v, d, ok := p.evaluate(flag, flagset.TypeBoolean, def, flatCtx)
	if !ok {
		return openfeature.BoolResolutionDetail{Value: def, ProviderResolutionDetail: d}
	}
	tv, isType := v.(bool)
	if !isType {
		return openfeature.BoolResolutionDetail{Value: def, ProviderResolutionDetail: typeMismatch(flag, d)}
	}
	return openfeature.BoolResolutionDetail{Value: tv, ProviderResolutionDetail: d}
}

// StringEvaluation resolves a string flag.
func (p *Provider) StringEvaluation(_ context.Context, flag string, def string, flatCtx openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	v, d, ok := p.evaluate(flag, flagset.TypeString, def, flatCtx)
	if !ok {
		return openfeature.StringResolutionDetail{Value: def, ProviderResolutionDetail: d}
	}
	tv, isType := v.(string)
	if !isType {
		return openfeature.StringResolutionDetail{Value: def, ProviderResolutionDetail: typeMismatch(flag, d)}
	}
	return openfeature.StringResolutionDetail{Value: tv, ProviderResolutionDetail: d}
}

// FloatEvaluation resolves a number flag as float64.
func (p *Provider) FloatEvaluation(_ context.Context, flag string, def float64, flatCtx openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	v, d, ok := p.evaluate(flag, flagset.TypeFloat, def, flatCtx)
	if !ok {
		return openfeature.FloatResolutionDetail{Value: def, ProviderResolutionDetail: d}
	}
	tv, isType := v.(float64)
	if !isType {
		return openfeature.FloatResolutionDetail{Value: def, ProviderResolutionDetail: typeMismatch(flag, d)}
	}
	return openfeature.FloatResolutionDetail{Value: tv, ProviderResolutionDetail: d}
}

// IntEvaluation resolves a number flag with an integral value as int64.
func (p *Provider) IntEvaluation(_ context.Context, flag string, def int64, flatCtx openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	v, d, ok := p.evaluate(flag, flagset.TypeInteger, def, flatCtx)
	if !ok {
		return openfeature.IntResolutionDetail{Value: def, ProviderResolutionDetail: d}
	}
	tv, isType := v.(int64)
	if !isType {
		return openfeature.IntResolutionDetail{Value: def, ProviderResolutionDetail: typeMismatch(flag, d)}
	}
	return openfeature.IntResolutionDetail{Value: tv, ProviderResolutionDetail: d}
}

// ObjectEvaluation resolves an object flag; the value is a map[string]any shared
// with the snapshot, which callers must not mutate.
func (p *Provider) ObjectEvaluation(_ context.Context, flag string, def any, flatCtx openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	v, d, ok := p.evaluate(flag, flagset.TypeObject, def, flatCtx)
	if !ok {
		return openfeature.InterfaceResolutionDetail{Value: def, ProviderResolutionDetail: d}
	}
	return openfeature.InterfaceResolutionDetail{Value: v, ProviderResolutionDetail: d}
}

// evaluate runs one evaluation on the current snapshot and returns the value and
// the resolution details. ok is false when the caller must return its default (no
// snapshot yet, an evaluation error, or no variant); d then carries the reason and
// error. It returns the value rather than the whole flagset.Result: copying less
// matters on a path measured in tens of nanoseconds.
func (p *Provider) evaluate(flag string, typ flagset.Type, def any, flatCtx openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail, bool) {
	s := p.set.Load()
	if s == nil {
		return nil, openfeature.ProviderResolutionDetail{
			Reason:          openfeature.ErrorReason,
			ResolutionError: openfeature.NewProviderNotReadyResolutionError("flagsync: no snapshot loaded yet from " + p.src.describe()),
		}, false
	}
	// FlattenedContext is a map[string]any: the conversion shares it, no copy.
	var r flagset.Result
	if p.o.fixedNow != 0 {
		r = s.EvaluateAt(flag, typ, def, map[string]any(flatCtx), p.o.fixedNow)
	} else {
		r = s.Evaluate(flag, typ, def, map[string]any(flatCtx))
	}
	d := openfeature.ProviderResolutionDetail{
		Reason:       openfeature.Reason(r.Reason), // flagset reasons are the OpenFeature reason strings
		Variant:      r.Variant,
		FlagMetadata: openfeature.FlagMetadata(r.Metadata),
	}
	if r.ErrorCode != flagset.CodeNone {
		d.Reason = openfeature.ErrorReason
		d.Variant = ""
		d.ResolutionError = resolutionError(r.ErrorCode, r.ErrorMessage)
		return nil, d, false
	}
	if r.Value == nil {
		return nil, d, false
	}
	return r.Value, d, true
}

func resolutionError(code flagset.ErrorCode, msg string) openfeature.ResolutionError {
	switch code {
	case flagset.CodeFlagNotFound:
		return openfeature.NewFlagNotFoundResolutionError(msg)
	case flagset.CodeParseError:
		return openfeature.NewParseErrorResolutionError(msg)
	case flagset.CodeTypeMismatch:
		return openfeature.NewTypeMismatchResolutionError(msg)
	default:
		return openfeature.NewGeneralResolutionError(msg)
	}
}

// typeMismatch guards against a flagset Value of an unexpected Go type; flagset
// reports TYPE_MISMATCH itself, so this is defence in depth.
func typeMismatch(flag string, d openfeature.ProviderResolutionDetail) openfeature.ProviderResolutionDetail {
	return openfeature.ProviderResolutionDetail{
		Reason:          openfeature.ErrorReason,
		ResolutionError: openfeature.NewTypeMismatchResolutionError("flag " + flag + ": value type does not match the requested type"),
		FlagMetadata:    d.FlagMetadata,
	}
}
