package env

import (
	"context"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/flagset"
)

func TestFetch(t *testing.T) {
	environ := func() []string {
		return []string{
			"PATH=/bin",
			"FLAGSYNC_FLAG_BETA_MODE=true",
			"FLAGSYNC_FLAG_COLOR=green",
			"FLAGSYNC_FLAG_LIMIT=10",
			"FLAGSYNC_FLAG_KILL={\"state\": \"DISABLED\"}",
			`FLAGSYNC_FLAG_FULL={"state":"ENABLED","variants":{"a":"a"},"defaultVariant":"a"}`,
			"FLAGSYNC_FLAG_BAD={\"state\": \"MAYBE\"}",
			"FLAGSYNC_FLAG_BROKEN={broken: [",
			"FLAGSYNC_FLAG_=ignored",
		}
	}
	res, err := New("env", Config{}, environ).Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ov := res.Overlays["beta_mode"]; !ov.HasValue || ov.Value != true || ov.Origin.String() != "env:FLAGSYNC_FLAG_BETA_MODE" {
		t.Errorf("beta_mode = %+v", ov)
	}
	if ov := res.Overlays["color"]; ov.Value != "green" {
		t.Errorf("color = %+v", ov)
	}
	if ov := res.Overlays["limit"]; ov.Value != float64(10) {
		t.Errorf("limit = %+v", ov)
	}
	if ov := res.Overlays["kill"]; ov.State == nil || *ov.State != flagset.Disabled || ov.HasValue {
		t.Errorf("kill = %+v", ov)
	}
	f := res.Definitions["full"]
	if f == nil || f.Metadata[flagset.MetaSource] != "env:FLAGSYNC_FLAG_FULL" {
		t.Errorf("full = %+v", f)
	}
	if len(res.Problems) != 2 || res.Problems[0].Flag != "bad" || res.Problems[0].Path != "flags.bad.state" ||
		res.Problems[1].Flag != "broken" || res.Problems[1].Path != "flags.broken" ||
		!strings.HasPrefix(res.Problems[1].Message, "malformed YAML value") ||
		!strings.HasSuffix(res.Problems[1].Message, "(env:FLAGSYNC_FLAG_BROKEN)") {
		t.Errorf("problems = %+v", res.Problems)
	}
	if len(res.Overlays)+len(res.Definitions) != 5 {
		t.Errorf("got %d overlays and %d definitions", len(res.Overlays), len(res.Definitions))
	}
}

func TestCustomPrefix(t *testing.T) {
	res, _ := New("env", Config{Prefix: "APP_"}, func() []string {
		return []string{"APP_X=false", "FLAGSYNC_FLAG_Y=true"}
	}).Fetch(context.Background())
	if ov, ok := res.Overlays["x"]; !ok || ov.Value != false || !ov.HasValue {
		t.Errorf("x = %+v", ov)
	}
	if _, ok := res.Overlays["y"]; ok {
		t.Error("y has the default prefix, not APP_")
	}
}
