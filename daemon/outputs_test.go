package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/transport"
)

// runDaemon runs h.d.Run until the test ends.
func runDaemon(t *testing.T, h *harness) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor(t, "first publish", func() bool { return h.d.Ready() })
}

// fileHolds reads the file output's metadata ("" when missing or unreadable).
func fileHolds(path string) holding {
	data, err := os.ReadFile(path)
	if err != nil {
		return holding{}
	}
	return holdingOf(data)
}

func TestDeletedOutputFileIsRewritten(t *testing.T) {
	h := newHarness(t, hopts{extra: "schedule: \"@every 1h\"\n"})
	runDaemon(t, h)
	want := h.d.Status()
	for i := range 3 { // each deletion, not only the first
		if err := os.Remove(h.out); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("output file back (deletion %d)", i+1), func() bool {
			return fileHolds(h.out).revision == want.Revision
		})
	}
	if got := fileHolds(h.out); got.generation != want.Generation {
		t.Errorf("rewritten with generation %d, want the current %d", got.generation, want.Generation)
	}
	if n := counter(t, h.metrics.OutputRepairs); n < 1 {
		t.Errorf("flagsync_output_repairs_total = %v, want >= 1", n)
	}
	if !strings.Contains(h.logs.String(), "output no longer holds the current snapshot") {
		t.Errorf("the repair was not logged:\n%s", h.logs.String())
	}
	waitFor(t, "status up to date", func() bool {
		st := h.d.Status()
		return st.Outputs[0].UpToDate && st.Outputs[0].Revision == want.Revision
	})
}

// A file another writer replaced with an older-looking or newer snapshot is put back
// to the daemon's snapshot, above the other writer's generation.
func TestReplacedOutputFileIsRewrittenAboveItsGeneration(t *testing.T) {
	h := newHarness(t, hopts{extra: "schedule: \"@every 1h\"\n"})
	runDaemon(t, h)
	want := h.d.Status().Revision
	// What another `flagsync sync --force` would write: other flags, a far newer generation.
	other := bareHarness(t, "other.json", "x")
	od := other.build(fmt.Sprintf("flagSetId: test\nsources:\n  - {name: git, type: file, path: %q}\noutputs:\n  file: {path: %q}\n", other.flags, other.out), hopts{})
	if _, err := od.Sync(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	foreign, err := os.ReadFile(other.out)
	if err != nil {
		t.Fatal(err)
	}
	fh := holdingOf(foreign)
	foreign = []byte(strings.Replace(string(foreign), fmt.Sprint(fh.generation), fmt.Sprint(fh.generation+1_000_000), 1))
	if err := transport.WriteFileAtomic(h.out, foreign, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "daemon's snapshot back", func() bool { return fileHolds(h.out).revision == want })
	if got := fileHolds(h.out).generation; got <= fh.generation+1_000_000 {
		t.Errorf("generation %d went backwards from the replacing writer's %d", got, fh.generation+1_000_000)
	}
	// The status follows the write (the repair records what it wrote after writing it).
	waitFor(t, "the status to match the file", func() bool {
		st := h.d.Status()
		return st.Outputs[0].UpToDate && st.Generation == fileHolds(h.out).generation
	})
}

func TestRedisRestartedEmptyIsRefilled(t *testing.T) {
	h := newHarness(t, hopts{redis: true, extra: "schedule: \"@every 1h\"\n"})
	runDaemon(t, h)
	want := h.d.Status().Revision
	for i := range 2 {
		h.redis.Stop()
		h.redis.Start()
		waitFor(t, fmt.Sprintf("redis refilled (restart %d)", i+1), func() bool {
			rev, _ := transport.ReadRevision(context.Background(), h.rc, "flagsync:test")
			return rev == want
		})
	}
	b, _ := transport.Read(context.Background(), h.rc, "flagsync:test")
	f, _ := os.ReadFile(h.out)
	if string(b) != string(f) {
		t.Fatal("redis and file differ after the refill")
	}
	// Flushed behind the daemon's back: the same.
	if err := h.rc.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "redis refilled after FLUSHALL\n"+h.logs.String(), func() bool {
		rev, _ := transport.ReadRevision(context.Background(), h.rc, "flagsync:test")
		return rev == want
	})
}

// A Redis that is unreachable is not reported as holding the snapshot.
func TestUnreachableRedisIsNotUpToDate(t *testing.T) {
	h := newHarness(t, hopts{redis: true})
	h.mustSync()
	h.redis.Stop()
	rep, err := h.sync(false)
	if err == nil || rep.Result != "unchanged" {
		t.Fatalf("sync with redis down: %+v, %v (want an error)", rep, err)
	}
	st := h.d.Status()
	if st.Outputs[1].UpToDate || st.Outputs[1].LastError == "" {
		t.Errorf("redis down but status says %+v", st.Outputs[1])
	}
	if !st.Outputs[0].UpToDate {
		t.Errorf("file output: %+v", st.Outputs[0])
	}
	// Back (empty): the next sync refills it and the status is clean again.
	h.redis.Start()
	h.mustSync()
	if o := h.d.Status().Outputs[1]; !o.UpToDate || o.LastError != "" {
		t.Errorf("redis back and refilled but status says %+v", o)
	}
}

// fullDir returns a directory no file can be written into: a full tmpfs when the test
// runs as root (mounting needs it), else a read-only directory (root ignores modes).
func fullDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "full")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
		return dir
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	// Fill it: a snapshot of a few flags no longer fits.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	block := make([]byte, 4096)
	for {
		if _, err := filler.Write(block); err != nil {
			break
		}
	}
	return dir
}

func TestFailedOutputMakesAnHonestStatus(t *testing.T) {
	h := bareHarness(t, "unused.json", "a", "b")
	out := filepath.Join(fullDir(t), "flags.json")
	h.d = h.build(fmt.Sprintf("flagSetId: test\nsources:\n  - {name: git, type: file, path: %q}\noutputs:\n  file: {path: %q}\n", h.flags, out), hopts{})
	rep, err := h.sync(false)
	if err == nil || rep.Result != "failed" {
		t.Fatalf("only output failed: result %q, err %v; want failed with an error", rep.Result, err)
	}
	st := h.d.Status()
	if st.LastSync == nil || st.LastSync.Result != "failed" || st.LastSync.Error == "" {
		t.Errorf("lastSync %+v, want result failed with the error", st.LastSync)
	}
	if o := st.Outputs[0]; o.UpToDate || o.LastError == "" || o.Revision != "" {
		t.Errorf("output status %+v, want not up to date with its error", o)
	}
	if st.Ready {
		t.Error("ready although nothing was published")
	}
}

func TestOneFailedOutputIsPartial(t *testing.T) {
	h := newHarness(t, hopts{redis: true})
	h.redis.Stop()
	rep, err := h.sync(false)
	if err == nil || rep.Result != "partial" {
		t.Fatalf("redis down: result %q, err %v; want partial with an error", rep.Result, err)
	}
	st := h.d.Status()
	if st.LastSync.Result != "partial" || !st.Outputs[0].UpToDate || st.Outputs[1].UpToDate {
		t.Errorf("status %+v %+v", st.LastSync, st.Outputs)
	}
}
