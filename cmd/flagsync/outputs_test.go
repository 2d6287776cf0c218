package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/transport"
)

// A `flagsync sync --once --force` run from a second process with other sources
// overwrites the file and Redis behind the running daemon's back. The daemon notices
// and puts its own snapshot back in both, above the other process's generation so
// readers that already took it accept the repair.
func TestForcedSyncFromAnotherProcessIsRepaired(t *testing.T) {
	e := newE2E(t, buildFlagsync(t), true, "")
	p := e.start()
	p.waitReady()
	st, _ := p.status()
	want := st["revision"].(string)

	otherFlags := filepath.Join(e.dir, "other.yaml")
	if err := os.WriteFile(otherFlags, []byte(flagDoc("x")), 0o644); err != nil {
		t.Fatal(err)
	}
	otherCfg := filepath.Join(e.dir, "other-flagsync.yaml")
	cfg := fmt.Sprintf("flagSetId: e2e\nsources:\n  - {name: git, type: file, path: %q}\noutputs:\n  file: {path: %q}\n  redis: {url: %q}\n",
		otherFlags, e.out, "redis://"+e.redis.Addr+"/0")
	if err := os.WriteFile(otherCfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd := exec.Command(e.bin, "sync", "--once", "--force", "--config", otherCfg)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("second process: %v\n%s%s", err, out, stderr.String())
	}
	var forcedRev string
	var forcedGen int64
	if _, err := fmt.Sscanf(string(out), "published: revision %s generation %d", &forcedRev, &forcedGen); err != nil || forcedRev == want {
		t.Fatalf("second process did not publish other flags: %v\n%s", err, out)
	}

	eventually(t, "file repaired\n"+p.out.String(), func() bool {
		data, err := os.ReadFile(e.out)
		if err != nil {
			return false
		}
		set, _, err := flagset.Load(data)
		return err == nil && set.Revision() == want && set.Len() == 3 && set.Generation() > forcedGen
	})
	eventually(t, "redis repaired\n"+p.out.String(), func() bool {
		rev, err := transport.ReadRevision(context.Background(), e.rc, "flagsync:e2e")
		return err == nil && rev == want
	})
	file, _ := os.ReadFile(e.out)
	snap, _ := transport.Read(context.Background(), e.rc, "flagsync:e2e")
	if string(file) != string(snap) {
		t.Error("file and redis differ after the repair")
	}
	eventually(t, "status up to date", func() bool {
		st, ok := p.status()
		if !ok {
			return false
		}
		for _, o := range st["outputs"].([]any) {
			if o.(map[string]any)["upToDate"] != true {
				return false
			}
		}
		return true
	})
}
