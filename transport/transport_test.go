package transport

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/internal/testsvc"
)

func newClient(t *testing.T) redis.UniversalClient {
	t.Helper()
	srv := testsvc.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestKeysFor(t *testing.T) {
	k := KeysFor(DefaultPrefix("prod"))
	want := Keys{
		Snapshot:   "{flagsync:prod}:snapshot",
		Revision:   "{flagsync:prod}:revision",
		Generation: "{flagsync:prod}:generation",
		Channel:    "{flagsync:prod}:changes",
	}
	if k != want {
		t.Fatalf("KeysFor = %+v, want %+v", k, want)
	}
}

func TestPublishAndRead(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	prefix := "{flagsync:test}"

	if _, err := Read(ctx, c, prefix); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("Read of a missing key: err = %v, want ErrNoSnapshot", err)
	}
	if _, _, err := ReadWithRevision(ctx, c, prefix); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("ReadWithRevision of a missing key: err = %v, want ErrNoSnapshot", err)
	}
	if _, err := ReadRevision(ctx, c, prefix); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("ReadRevision of a missing key: err = %v, want ErrNoSnapshot", err)
	}
	if g, err := ReadGeneration(ctx, c, prefix); err != nil || g != 0 {
		t.Fatalf("ReadGeneration of a missing key = %d, %v; want 0, nil", g, err)
	}

	if err := Publish(ctx, c, prefix, []byte(`{"flags":{}}`), "rev1", 5); err != nil {
		t.Fatalf("publish: %v", err)
	}
	got, err := Read(ctx, c, prefix)
	if err != nil || string(got) != `{"flags":{}}` {
		t.Fatalf("Read = %q, %v", got, err)
	}
	snap, rev, err := ReadWithRevision(ctx, c, prefix)
	if err != nil || string(snap) != `{"flags":{}}` || rev != "rev1" {
		t.Fatalf("ReadWithRevision = %q, %q, %v", snap, rev, err)
	}
	if rev, err := ReadRevision(ctx, c, prefix); err != nil || rev != "rev1" {
		t.Fatalf("ReadRevision = %q, %v", rev, err)
	}
	if g, err := ReadGeneration(ctx, c, prefix); err != nil || g != 5 {
		t.Fatalf("ReadGeneration = %d, %v; want 5", g, err)
	}
}

func TestPublishRefusesToGoBackwards(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	prefix := "flagsync:back"
	if err := Publish(ctx, c, prefix, []byte("new"), "r10", 10); err != nil {
		t.Fatalf("publish gen 10: %v", err)
	}
	for _, gen := range []int64{9, 10} {
		err := Publish(ctx, c, prefix, []byte("old"), "r-old", gen)
		var se *StaleError
		if !errors.As(err, &se) || !errors.Is(err, ErrStale) || se.Current != 10 {
			t.Fatalf("publish gen %d over 10: err = %v, want *StaleError{Current: 10}", gen, err)
		}
	}
	snap, rev, err := ReadWithRevision(ctx, c, prefix)
	if err != nil || string(snap) != "new" || rev != "r10" {
		t.Fatalf("after refused publishes: %q, %q, %v; want the gen-10 snapshot", snap, rev, err)
	}
	if err := Publish(ctx, c, prefix, []byte("newer"), "r11", 11); err != nil {
		t.Fatalf("publish gen 11: %v", err)
	}
	if g, _ := ReadGeneration(ctx, c, prefix); g != 11 {
		t.Fatalf("generation = %d, want 11", g)
	}
}

// Generation 0 is never newer than an empty store: it must be reported, not
// mistaken for success.
func TestPublishGenerationZeroRefused(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	err := Publish(ctx, c, "flagsync:zero", []byte("x"), "r0", 0)
	var se *StaleError
	if !errors.As(err, &se) || se.Current != 0 {
		t.Fatalf("publish generation 0 = %v, want *StaleError{Current: 0}", err)
	}
	if _, err := Read(ctx, c, "flagsync:zero"); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("a refused publish stored a snapshot: %v", err)
	}
}

func TestPublishAnnouncesRevision(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	prefix := "flagsync:chan"
	ps := c.Subscribe(ctx, KeysFor(prefix).Channel)
	defer ps.Close()
	if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil { // the subscribe confirmation
		t.Fatalf("subscribe: %v", err)
	}
	if err := Publish(ctx, c, prefix, []byte("s1"), "rev-1", 1); err != nil {
		t.Fatalf("publish: %v", err)
	}
	msg, err := ps.ReceiveTimeout(ctx, 5*time.Second)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	m, ok := msg.(*redis.Message)
	if !ok || m.Channel != KeysFor(prefix).Channel || m.Payload != "rev-1" {
		t.Fatalf("message = %#v, want revision rev-1 on %s", msg, KeysFor(prefix).Channel)
	}
	// A refused publish announces nothing.
	_ = Publish(ctx, c, prefix, []byte("s0"), "rev-0", 1)
	if msg, err := ps.ReceiveTimeout(ctx, 200*time.Millisecond); err == nil {
		t.Fatalf("refused publish sent %#v", msg)
	}
}

func TestPublishErrorNamesKey(t *testing.T) {
	srv := testsvc.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	srv.Stop()
	err := Publish(context.Background(), c, "flagsync:down", []byte("x"), "r", 1)
	if err == nil || !strings.Contains(err.Error(), "{flagsync:down}:snapshot") {
		t.Fatalf("publish to a stopped server: err = %v, want an error naming the key", err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	if err := WriteFileAtomic(path, []byte("one"), 0o640); err != nil {
		t.Fatalf("first write: %v", err)
	}
	if err := WriteFileAtomic(path, []byte("two"), 0o644); err != nil {
		t.Fatalf("second write: %v", err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "two" {
		t.Fatalf("content = %q, %v; want two", got, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode = %v, want 0644", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only flags.json (temp files left behind?)", len(entries))
	}
}

func TestWriteFileAtomicKeepsOpenReadersWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	if err := WriteFileAtomic(path, []byte("old content"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := WriteFileAtomic(path, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := f.Read(buf)
	if string(buf[:n]) != "old content" {
		t.Fatalf("an open reader saw %q; a rename must leave the old file intact", buf[:n])
	}
}

func TestWriteFileAtomicReplacesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.json")
	link := filepath.Join(dir, "flags.json")
	if err := os.WriteFile(target, []byte("target"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(link, []byte("replaced"), 0o600); err != nil {
		t.Fatalf("write over symlink: %v", err)
	}
	fi, err := os.Lstat(link)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSymlink != 0 || !fi.Mode().IsRegular() {
		t.Fatalf("path is %v after the write, want a regular file replacing the link", fi.Mode())
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", fi.Mode().Perm())
	}
	if got, _ := os.ReadFile(link); string(got) != "replaced" {
		t.Fatalf("content = %q", got)
	}
	if got, _ := os.ReadFile(target); string(got) != "target" {
		t.Fatalf("the old link target was modified: %q", got)
	}
}

func TestWriteFileAtomicMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "flags.json")
	err := WriteFileAtomic(path, []byte("x"), 0o644)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want an error naming %s", err, path)
	}
}

// A fenced publish is refused once a newer fence has published, records a newer fence
// even when its own write is stale, and an unfenced Publish ignores the fence.
func TestPublishFenced(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	prefix := "{flagsync:fenced}"
	fenceKey := prefix + ":fence"

	if err := PublishFenced(ctx, c, prefix, fenceKey, 0, []byte("x"), "r", 1); err == nil {
		t.Fatal("fence 0 accepted")
	}
	if err := PublishFenced(ctx, c, prefix, fenceKey, 7, []byte("a"), "r1", 1); err != nil {
		t.Fatalf("first fenced publish: %v", err)
	}
	if f, _ := c.Get(ctx, fenceKey).Int64(); f != 7 {
		t.Fatalf("stored fence = %d, want 7", f)
	}
	// A newer leader whose generation is stale still records its fence.
	err := PublishFenced(ctx, c, prefix, fenceKey, 9, []byte("b"), "r0", 1)
	var se *StaleError
	if !errors.As(err, &se) || se.Current != 1 {
		t.Fatalf("stale fenced publish = %v, want *StaleError{Current: 1}", err)
	}
	if f, _ := c.Get(ctx, fenceKey).Int64(); f != 9 {
		t.Fatalf("stored fence after the newer leader's attempt = %d, want 9", f)
	}
	// The old leader is now shut out even with a newer generation.
	err = PublishFenced(ctx, c, prefix, fenceKey, 7, []byte("old"), "r-old", 50)
	var fe *FencedError
	if !errors.Is(err, ErrFenced) || !errors.As(err, &fe) || fe.Ours != 7 || fe.Current != 9 {
		t.Fatalf("old leader publish = %v, want *FencedError{Ours: 7, Current: 9}", err)
	}
	if snap, rev, _ := ReadWithRevision(ctx, c, prefix); string(snap) != "a" || rev != "r1" {
		t.Fatalf("snapshot after refused publishes = %q %q, want a r1", snap, rev)
	}
	if err := PublishFenced(ctx, c, prefix, fenceKey, 9, []byte("b"), "r2", 2); err != nil {
		t.Fatalf("new leader publish: %v", err)
	}
	// Publish without a fence is the same script minus the fence check.
	if err := Publish(ctx, c, prefix, []byte("c"), "r3", 3); err != nil {
		t.Fatalf("unfenced publish: %v", err)
	}
	if f, _ := c.Get(ctx, fenceKey).Int64(); f != 9 {
		t.Fatalf("unfenced publish changed the fence to %d", f)
	}
	if snap, rev, _ := ReadWithRevision(ctx, c, prefix); string(snap) != "c" || rev != "r3" {
		t.Fatalf("snapshot = %q %q, want c r3", snap, rev)
	}
}
