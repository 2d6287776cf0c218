package lifecycle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
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

type memStore struct {
	values  map[string][]byte // origin → value
	failFor string
	deleted []string
}

func (m *memStore) Delete(_ context.Context, key, origin string) ([]byte, error) {
	if key == m.failFor {
		return nil, errors.New("access denied")
	}
	v, ok := m.values[origin]
	if !ok {
		return nil, errors.New("not found")
	}
	delete(m.values, origin)
	m.deleted = append(m.deleted, key)
	return v, nil
}

func (m *memStore) Get(_ context.Context, _, origin string) ([]byte, error) {
	return m.values[origin], nil
}

func auditLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("audit line not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

func TestCleanup(t *testing.T) {
	findings := Classify(testDoc(), now, 0, 0)
	newStores := func() (*memStore, *memStore) {
		ssm := &memStore{values: map[string][]byte{"ssm:/flags/prod/long_gone@4": []byte(`true`)}}
		consul := &memStore{values: map[string][]byte{"consul:flags/in_grace@12": []byte(`{"state":"ENABLED"}`)}}
		return ssm, consul
	}

	t.Run("dry run deletes nothing", func(t *testing.T) {
		ssm, consul := newStores()
		var buf bytes.Buffer
		acts, err := Cleanup(context.Background(), findings, map[string]Deleter{"ssm": ssm, "consul": consul}, true, slog.New(slog.NewJSONHandler(&buf, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if len(ssm.deleted)+len(consul.deleted) != 0 {
			t.Fatalf("dry run deleted %v %v", ssm.deleted, consul.deleted)
		}
		lines := auditLines(t, &buf)
		if len(lines) != 4 || len(acts) != 4 {
			t.Fatalf("want 4 audit lines and actions, got %d, %d: %s", len(lines), len(acts), buf.String())
		}
		for _, l := range lines {
			if l["flag"] == "long_gone" && (l["previous"] != "true" || l["dryRun"] != true || !strings.Contains(l["msg"].(string), "dry run")) {
				t.Errorf("dry run line for long_gone: %v", l)
			}
		}
	})

	t.Run("deletes only from stores, never files", func(t *testing.T) {
		ssm, consul := newStores()
		var buf bytes.Buffer
		acts, err := Cleanup(context.Background(), findings, map[string]Deleter{"ssm": ssm, "consul": consul, "file": ssm}, false, slog.New(slog.NewJSONHandler(&buf, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ssm.deleted, []string{"long_gone"}) || !reflect.DeepEqual(consul.deleted, []string{"in_grace"}) {
			t.Fatalf("deleted ssm=%v consul=%v", ssm.deleted, consul.deleted)
		}
		byFlag := map[string]Action{}
		for _, a := range acts {
			byFlag[a.Flag] = a
		}
		if !strings.Contains(byFlag["file_gone"].Skipped, "file") {
			t.Errorf("file flag not skipped: %+v", byFlag["file_gone"])
		}
		if !strings.Contains(byFlag["exactly_at"].Skipped, "no deleter") {
			t.Errorf("env flag not skipped: %+v", byFlag["exactly_at"])
		}
		if string(byFlag["in_grace"].Previous) != `{"state":"ENABLED"}` {
			t.Errorf("previous value not returned: %q", byFlag["in_grace"].Previous)
		}
		for _, l := range auditLines(t, &buf) {
			if l["who"] == "" || l["time"] == nil || l["flag"] == nil {
				t.Errorf("audit line lacks who/what/when: %v", l)
			}
			if l["flag"] == "long_gone" && (l["msg"] != "flag deleted from source" || l["previous"] != "true" || l["owner"] != "team-a") {
				t.Errorf("deletion line: %v", l)
			}
		}
	})

	t.Run("one failure does not stop the rest", func(t *testing.T) {
		ssm, consul := newStores()
		ssm.failFor = "long_gone"
		acts, err := Cleanup(context.Background(), findings, map[string]Deleter{"ssm": ssm, "consul": consul}, false, nil)
		if err == nil || !strings.Contains(err.Error(), "long_gone") || !strings.Contains(err.Error(), "access denied") {
			t.Fatalf("want error naming the flag, got %v", err)
		}
		if len(consul.deleted) != 1 || len(acts) != 4 {
			t.Errorf("consul deletions %v, actions %d", consul.deleted, len(acts))
		}
	})
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

func TestParseOrigin(t *testing.T) {
	for in, want := range map[string]Origin{
		"ssm:/flags/prod/x@3":     {"ssm", "/flags/prod/x", "3"},
		"consul:flags/prod/x@812": {"consul", "flags/prod/x", "812"},
		"file:flags/a.yaml":       {"file", "flags/a.yaml", ""},
		"consul:team@example/x":   {"consul", "team@example/x", ""},
		"env:FLAGSYNC_FLAG_BETA@": {"env", "FLAGSYNC_FLAG_BETA@", ""},
	} {
		got, err := ParseOrigin(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v %v, want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "noscheme", ":x", "ssm:"} {
		if _, err := ParseOrigin(in); err == nil {
			t.Errorf("%q: want error", in)
		}
	}
}
