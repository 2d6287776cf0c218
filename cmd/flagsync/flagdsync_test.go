package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/flagsync/flagsync/flagdsync/syncv1"
	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/internal/testsvc"
)

// TestFlagdSyncAcrossReload: `flagsync run` with flagdSync serves the snapshot to a
// SyncFlags stream, sends a change made in the source, and keeps the same stream
// going across a SIGHUP reload, now with the new configuration's publishes.
func TestFlagdSyncAcrossReload(t *testing.T) {
	bin := buildFlagsync(t)
	syncAddr := fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t))
	e := newE2E(t, bin, false, fmt.Sprintf("flagdSync: {enabled: true, listen: %q}\n", syncAddr))
	p := e.start()
	p.waitReady()
	conn, err := grpc.NewClient(syncAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream, err := syncv1.NewFlagSyncServiceClient(conn).SyncFlags(ctx, &syncv1.SyncFlagsRequest{Selector: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	keys := func() string {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("recv: %v\n%s", err, p.out.String())
		}
		set, probs, err := flagset.Load([]byte(m.FlagConfiguration))
		if err != nil || len(probs) > 0 {
			t.Fatalf("snapshot: %v %v", err, probs)
		}
		return strings.Join(set.Keys(), ",")
	}
	if got := keys(); got != "a,b,c" {
		t.Fatalf("first snapshot %q", got)
	}
	e.writeFlags(flagDoc("a", "b", "c", "d"))
	if got := keys(); got != "a,b,c,d" {
		t.Fatalf("after the source change %q", got)
	}
	// Reload with one more source: the stream stays open and gets its publish.
	cfg := strings.Replace(mustRead(t, e.config), "  - {name: ops, type: env}\n",
		"  - {name: ops, type: env}\n  - {name: more, type: file, path: "+fmt.Sprintf("%q", e.dir+"/more.yaml")+"}\n", 1)
	if err := os.WriteFile(e.dir+"/more.yaml", []byte(flagDoc("e")), 0o644); err != nil {
		t.Fatal(err)
	}
	e.writeConfig(cfg)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if got := keys(); got != "a,b,c,d,e" {
		t.Fatalf("after the reload %q\n%s", got, p.out.String())
	}
}

// TestFlagdSyncPortTaken: a daemon whose flagd sync port is in use exits at start
// with an error naming the key, instead of running without it.
func TestFlagdSyncPortTaken(t *testing.T) {
	bin := buildFlagsync(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e := newE2E(t, bin, false, fmt.Sprintf("flagdSync: {enabled: true, listen: %q}\n", ln.Addr().String()))
	p := e.start()
	if code := p.exit(30 * time.Second); code != 1 {
		t.Fatalf("exit code %d\n%s", code, p.out.String())
	}
	if !strings.Contains(p.out.String(), "flagdSync.listen") {
		t.Fatalf("the error does not name flagdSync.listen:\n%s", p.out.String())
	}
}
