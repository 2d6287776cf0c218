package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/flagsync/flagsync/flagset"
)

// TestQuickstartExample keeps examples/quickstart working: its config loads from
// the repository root (as make run uses it), every flag is valid, and the flags
// behave as the comments say, including the env overlay.
func TestQuickstartExample(t *testing.T) {
	t.Chdir("..")
	cfg, err := LoadConfig("examples/quickstart/flagsync.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Outputs.File.Path != "var/flags.json" || cfg.HTTP.Listen != "127.0.0.1:8080" {
		t.Errorf("quickstart output %q listen %q", cfg.Outputs.File.Path, cfg.HTTP.Listen)
	}
	if !cfg.FlagdSync.Enabled || cfg.FlagdSync.Listen != DefaultFlagdSyncListen {
		t.Errorf("quickstart flagdSync %+v: make run must serve flagd's sync port", cfg.FlagdSync)
	}
	cfg.Outputs.File.Path = filepath.Join(t.TempDir(), "flags.json")
	d, err := New(cfg, Options{Logger: discardLogger(), Environ: func() []string {
		return []string{"FLAGSYNC_FLAG_BETA_MODE=true"}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rep, err := d.Sync(context.Background(), false)
	if err != nil || len(rep.FlagErrors) > 0 || rep.Flags != 5 {
		t.Fatalf("sync: %+v %v", rep, err)
	}
	set, probs, err := flagset.Load(d.Snapshot())
	if err != nil || len(probs) > 0 {
		t.Fatalf("snapshot: %v %v", err, probs)
	}
	cases := []struct {
		flag string
		typ  flagset.Type
		ctx  map[string]any
		want any
	}{
		{"new_dashboard", flagset.TypeBoolean, map[string]any{"targetingKey": "u1", "email": "alice@example.com"}, true},
		{"new_dashboard", flagset.TypeBoolean, map[string]any{"targetingKey": "u2", "email": "eve@example.org"}, false},
		{"new_auth_flow", flagset.TypeBoolean, map[string]any{"targetingKey": "u3", "email": "carol@example.com"}, true},
		{"new_auth_flow", flagset.TypeBoolean, map[string]any{"targetingKey": "u4", "email": "dan@other.net"}, false},
		{"beta_mode", flagset.TypeBoolean, nil, true}, // the env overlay
		{"checkout_button_color", flagset.TypeString, nil, "#1f6feb"},
	}
	for _, c := range cases {
		r := set.Evaluate(c.flag, c.typ, nil, c.ctx)
		if r.Value != c.want || r.ErrorCode != flagset.CodeNone {
			t.Errorf("%s %v = %+v, want %v", c.flag, c.ctx, r, c.want)
		}
	}
	on := 0
	for i := range 1000 {
		r := set.Evaluate("search_v2_rollout", flagset.TypeBoolean, false, map[string]any{"targetingKey": fmt.Sprintf("user-%d", i)})
		if r.Value == true {
			on++
		}
	}
	if on < 30 || on > 200 {
		t.Errorf("search_v2_rollout on for %d of 1000 users, want about 10%%", on)
	}
}
