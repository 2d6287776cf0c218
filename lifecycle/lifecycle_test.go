package lifecycle

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flagsync/flagsync/flagset"
)

var now = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

func flag(expires, owner, source string) *flagset.Flag {
	on := "on"
	md := map[string]any{flagset.MetaOwner: owner, flagset.MetaSource: source}
	if expires != "" {
		md[flagset.MetaExpiresAt] = expires
	}
	return &flagset.Flag{State: flagset.Enabled, Variants: map[string]any{"on": true, "off": false}, DefaultVariant: &on, Metadata: md}
}

func testDoc() *flagset.Document {
	return &flagset.Document{Flags: map[string]*flagset.Flag{
		"long_gone":  flag("2026-01-01T00:00:00Z", "team-a", "ssm:/flags/prod/long_gone@4"),
		"in_grace":   flag("2026-06-14T12:00:00Z", "team-b", "consul:flags/in_grace@12"),
		"soon":       flag("2026-06-20T00:00:00Z", "team-c", "file:flags.yaml"),
		"far":        flag("2027-01-01T00:00:00Z", "team-d", "file:flags.yaml"),
		"no_expiry":  flag("", "team-e", "file:flags.yaml"),
		"typo":       flag("next tuesday", "team-f", "ssm:/flags/prod/typo@1"),
		"file_gone":  flag("2026-02-01T00:00:00+01:00", "team-g", "file:flags.yaml"),
		"exactly_at": flag("2026-06-13T12:00:00Z", "team-h", "env:FLAGSYNC_FLAG_EXACTLY_AT"),
	}}
}

func TestClassify(t *testing.T) {
	got := Classify(testDoc(), now, 14*24*time.Hour, 48*time.Hour)
	want := map[string]Status{
		"exactly_at": StatusExpired, // expiresAt + grace == now counts as expired
		"far":        StatusOK,
		"file_gone":  StatusExpired,
		"in_grace":   StatusGrace,
		"long_gone":  StatusExpired,
		"soon":       StatusExpiring,
		"typo":       StatusInvalid,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d findings, want %d: %+v", len(got), len(want), got)
	}
	for i, fd := range got {
		if i > 0 && got[i-1].Flag >= fd.Flag {
			t.Errorf("findings not sorted: %s before %s", got[i-1].Flag, fd.Flag)
		}
		if want[fd.Flag] != fd.Status {
			t.Errorf("%s: status %s, want %s", fd.Flag, fd.Status, want[fd.Flag])
		}
	}
	lg := got[4]
	if lg.Flag != "long_gone" || lg.Owner != "team-a" || lg.Source != "ssm:/flags/prod/long_gone@4" ||
		!lg.ExpiresAt.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || lg.Remaining >= 0 {
		t.Errorf("long_gone finding wrong: %+v", lg)
	}
	if typo := got[6]; !strings.Contains(typo.Problem, "flags.typo.metadata.expiresAt") {
		t.Errorf("typo problem should name the field: %q", typo.Problem)
	}
	// Without grace, in_grace is expired; with a small warn window, soon is ok.
	for _, fd := range Classify(testDoc(), now, time.Hour, 0) {
		if fd.Flag == "in_grace" && fd.Status != StatusExpired {
			t.Errorf("in_grace without grace: %s", fd.Status)
		}
		if fd.Flag == "soon" && fd.Status != StatusOK {
			t.Errorf("soon with 1h warn window: %s", fd.Status)
		}
	}
	if Classify(nil, now, 0, 0) != nil {
		t.Error("nil document should give no findings")
	}
}

func TestApplyNeverMutatesInput(t *testing.T) {
	doc := testDoc()
	before, _ := json.Marshal(doc)
	findings := Classify(doc, now, 0, 0)
	for _, kind := range []ActionKind{ActionReport, ActionDisable, ActionRemove, ActionDeleteFromSource} {
		out, acts := Apply(doc, findings, kind)
		after, _ := json.Marshal(doc)
		if !bytes.Equal(before, after) {
			t.Fatalf("%s: Apply modified its input", kind)
		}
		var flags []string
		for _, a := range acts {
			flags = append(flags, a.Flag)
			if a.Kind != kind {
				t.Errorf("%s: action kind %s", kind, a.Kind)
			}
		}
		wantFlags := []string{"exactly_at", "file_gone", "in_grace", "long_gone"}
		if !reflect.DeepEqual(flags, wantFlags) {
			t.Errorf("%s: actions for %v, want %v", kind, flags, wantFlags)
		}
		for _, k := range wantFlags {
			f, present := out.Flags[k]
			switch kind {
			case ActionReport:
				if !present || f.State != flagset.Enabled {
					t.Errorf("report changed %s", k)
				}
			case ActionDisable:
				if !present || f.State != flagset.Disabled {
					t.Errorf("disable: %s present=%v", k, present)
				}
			default:
				if present {
					t.Errorf("%s: %s still in snapshot", kind, k)
				}
			}
		}
		for _, k := range []string{"soon", "far", "no_expiry", "typo"} {
			if f := out.Flags[k]; f == nil || f.State != flagset.Enabled {
				t.Errorf("%s: untouched flag %s changed", kind, k)
			}
		}
	}
}

func TestApplyAlreadyHandled(t *testing.T) {
	doc := testDoc()
	findings := Classify(doc, now, 0, 0)
	out, _ := Apply(doc, findings, ActionRemove)
	// The daemon applies at every sync: a second pass over the result has nothing to do.
	out2, acts := Apply(out, findings, ActionRemove)
	if len(acts) != 0 || len(out2.Flags) != len(out.Flags) {
		t.Errorf("second Apply acted again: %v", acts)
	}
	if d, a := Apply(nil, findings, ActionRemove); d != nil || a != nil {
		t.Error("nil document")
	}
}

func TestConfig(t *testing.T) {
	var c Config
	src := "schedule: '0 3 * * *'\nwarnBefore: 7d\ngrace: 1d12h\naction: {default: report, prod: disable, staging: remove}\n"
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	c = c.WithDefaults()
	if err := c.Validate("cleanup"); err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.WarnBefore) != 7*24*time.Hour || time.Duration(c.Grace) != 36*time.Hour {
		t.Errorf("durations %v %v", c.WarnBefore, c.Grace)
	}
	if c.ActionFor("prod") != ActionDisable || c.ActionFor("staging") != ActionRemove || c.ActionFor("dev") != ActionReport {
		t.Errorf("per-env actions wrong: %+v", c.Action)
	}
	if !c.IsDryRun() {
		t.Error("dryRun must default to true")
	}
	var perEnv Config
	if err := yaml.Unmarshal([]byte("action: {default: report, prod: deleteFromSource}\ndryRun: false\n"), &perEnv); err != nil {
		t.Fatal(err)
	}
	if err := perEnv.Validate("cleanup"); err != nil || perEnv.IsDryRun() {
		t.Errorf("dryRun with deleteFromSource in one environment: %v, dry run %v", err, perEnv.IsDryRun())
	}

	var d Config
	if err := yaml.Unmarshal([]byte("action: deleteFromSource\ndryRun: false\n"), &d); err != nil {
		t.Fatal(err)
	}
	d = d.WithDefaults()
	if d.Schedule != "@daily" || time.Duration(d.WarnBefore) != DefaultWarnBefore || d.ActionFor("any") != ActionDeleteFromSource || d.IsDryRun() {
		t.Errorf("defaults wrong: %+v", d)
	}

	for src, wantErr := range map[string]string{
		"action: nuke\n":                `cleanup.action: unknown action "nuke"`,
		"action: {prod: nuke}\n":        `cleanup.action.prod: unknown action "nuke"`,
		"schedule: 'every full moon'\n": "cleanup.schedule",
		"warnBefore: 2 weeks\n":         "invalid duration",
		"grace: -1d\n":                  "cleanup.grace: must not be negative",
		"action: [report]\n":            "action must be",
		// dryRun rehearses deletions: with no deleteFromSource anywhere it would be a
		// switch that does nothing, so it is refused by name.
		"action: disable\ndryRun: true\n":                         "cleanup.dryRun: only applies to action deleteFromSource",
		"dryRun: false\n":                                         "cleanup.dryRun: only applies to action deleteFromSource",
		"action: {default: report, prod: remove}\ndryRun: true\n": "cleanup.dryRun",
	} {
		var c Config
		err := yaml.Unmarshal([]byte(src), &c)
		if err == nil {
			err = c.Validate("cleanup")
		}
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: got %v, want error containing %q", src, err, wantErr)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"14d": 14 * 24 * time.Hour, "36h": 36 * time.Hour, "1d12h": 36 * time.Hour, "0": 0, "90m": 90 * time.Minute, "-2d": -48 * time.Hour,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "1.5d", "xd", "14 days", "1d-3h"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("%q: want error", in)
		}
	}
}
