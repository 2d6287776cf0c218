package flagdsync_test

import (
	"context"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/flagdsync/syncv1"
	"github.com/flagsync/flagsync/flagset"
)

// The payload carries the rules with $refs inlined (the Java flagd provider rejects a whole
// payload whose evaluators hold a "$"), and means what the snapshot means.
func TestPayloadInlinesRefs(t *testing.T) {
	e := newEnv(t, "", nil)
	e.write(`{"$evaluators": {"staff": {"ends_with": [{"var": "email"}, "@corp.example"]},
  "staff_or_beta": {"or": [{"$ref": "staff"}, {"var": "$flagd.flagKey"}]}},
 "flags": {"gate": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
  "targeting": {"if": [{"$ref": "staff_or_beta"}, "on", "off"]}}}}`)
	if rep, err := e.d.Sync(context.Background(), false); err != nil || rep.Result != "published" {
		t.Fatalf("sync: %+v %v", rep, err)
	}
	r, err := e.cli.FetchAllFlags(context.Background(), &syncv1.FetchAllFlagsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.FlagConfiguration, "$evaluators") || strings.Contains(r.FlagConfiguration, "$ref") {
		t.Fatalf("payload still has $evaluators/$ref: %s", r.FlagConfiguration)
	}
	payload, _, err := flagset.Load([]byte(r.FlagConfiguration))
	if err != nil {
		t.Fatal(err)
	}
	snapshot, _, err := flagset.Load(e.d.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	// Clients report the snapshot's revision (metadata.version) as it is.
	if payload.Revision() != snapshot.Revision() {
		t.Errorf("payload revision %s, snapshot %s", payload.Revision(), snapshot.Revision())
	}
	for _, ctx := range []map[string]any{{"email": "a@corp.example"}, {"email": "a@else.example"}, {}} {
		got := payload.Evaluate("gate", flagset.TypeBoolean, false, ctx)
		want := snapshot.Evaluate("gate", flagset.TypeBoolean, false, ctx)
		if got.Value != want.Value || got.Variant != want.Variant || got.Reason != want.Reason {
			t.Errorf("context %v: payload %+v, snapshot %+v", ctx, got, want)
		}
	}
}
