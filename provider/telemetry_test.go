package provider

import (
	"context"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/open-feature/go-sdk/openfeature/telemetry"
)

// telemetryHook records the OpenTelemetry evaluation event the SDK's telemetry
// package builds in a Finally hook, as the OTel hooks do.
type telemetryHook struct {
	openfeature.UnimplementedHook
	events []telemetry.EvaluationEvent
}

func (h *telemetryHook) Finally(_ context.Context, hc openfeature.HookContext, d openfeature.InterfaceEvaluationDetails, _ openfeature.HookHints) {
	h.events = append(h.events, telemetry.CreateEvaluationEvent(hc, d))
}

func TestTelemetryAttributes(t *testing.T) {
	checkNoLeak(t)
	path := tempPath(t)
	s := newSnapshot(1).with("a", true)
	s.writeFile(t, path)
	_, rev := s.encode(t)

	api := isolated.NewAPI()
	t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	if err := api.SetProviderAndWait(context.Background(), NewFile(path, WithPollInterval(never))); err != nil {
		t.Fatal(err)
	}
	h := &telemetryHook{}
	c := api.NewClient()
	c.AddHooks(h)
	if _, err := c.BooleanValue(context.Background(), "a", false, openfeature.NewEvaluationContext("user-1", nil)); err != nil {
		t.Fatal(err)
	}
	if len(h.events) != 1 {
		t.Fatalf("%d telemetry events, want 1", len(h.events))
	}
	attrs := h.events[0].Attributes
	for key, want := range map[string]any{
		telemetry.FlagSetIDKey:     "test",
		telemetry.VersionKey:       rev,
		telemetry.ProviderNameKey:  Name,
		telemetry.ResultVariantKey: "v",
		telemetry.ResultReasonKey:  "static",
		telemetry.ContextIDKey:     "user-1",
	} {
		if attrs[key] != want {
			t.Errorf("telemetry attribute %s = %v, want %v", key, attrs[key], want)
		}
	}
}
