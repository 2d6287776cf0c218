package flagdsync_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/flagsync/flagsync/flagdsync/syncv1"
)

// bigDoc is a flag file of about 250 KB whose flag color is value: far more than
// HTTP/2's 64 KB stream window, so a client that stops reading stalls its stream.
func bigDoc(value string) string {
	var b strings.Builder
	b.WriteString(flagDoc(value))
	pad := strings.Repeat("x", 200)
	for i := range 1000 {
		fmt.Fprintf(&b, "  pad%04d:\n    state: ENABLED\n    variants: {v: %q}\n    defaultVariant: v\n", i, pad)
	}
	return b.String()
}

// TestSlowClientGetsOnlyTheLatest: a client that stops reading never delays a publish
// or another client, and once it reads again it gets the latest snapshot, skipping
// the ones it was too slow for.
func TestSlowClientGetsOnlyTheLatest(t *testing.T) {
	e := newEnv(t, "", nil)
	e.write(bigDoc("v0"))
	if rep, err := e.d.Sync(context.Background(), false); err != nil || rep.Result != "published" {
		t.Fatalf("sync: %+v %v", rep, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Fixed 64 KB windows (no BDP growth): the slow client's stream stalls for sure.
	slowConn, err := grpc.NewClient(e.fs.Addrs()[0].String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer slowConn.Close()
	slow, err := syncv1.NewFlagSyncServiceClient(slowConn).SyncFlags(ctx, &syncv1.SyncFlagsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := e.cli.SyncFlags(ctx, &syncv1.SyncFlagsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := recvColor(t, fast); got != "v0" {
		t.Fatalf("fast first %q", got)
	}
	const publishes = 6
	for i := 1; i <= publishes; i++ {
		want := fmt.Sprintf("v%d", i)
		e.write(bigDoc(want))
		if rep, err := e.d.Sync(context.Background(), false); err != nil || rep.Result != "published" {
			t.Fatalf("sync %d: %+v %v", i, rep, err)
		}
		if got := recvColor(t, fast); got != want {
			t.Fatalf("fast client after publish %d: %q", i, got)
		}
	}
	// The slow client reads now: what its stream had under way, then the latest.
	var got []string
	for len(got) == 0 || got[len(got)-1] != fmt.Sprintf("v%d", publishes) {
		got = append(got, recvColor(t, slow))
		if len(got) > 3 {
			t.Fatalf("slow client got %v: more than the snapshot under way and the latest", got)
		}
	}
	t.Logf("slow client received %v", got)
}

// TestFrequentPingsAreTolerated: a client pinging every 20 ms (with no stream open)
// is not sent GOAWAY "too_many_pings", which would close its connection.
func TestFrequentPingsAreTolerated(t *testing.T) {
	e := newEnv(t, "", nil)
	c, err := net.Dial("tcp", e.fs.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	frames := make(chan http2.Frame, 64)
	go func() {
		defer close(frames)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			frames <- f
		}
	}()
	acks := 0
	const pings = 50
	for i := range pings {
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
		// Wait for this ping's ack; a GOAWAY or a closed connection fails.
		for waiting := true; waiting; {
			f, ok := <-frames
			if !ok {
				t.Fatalf("connection closed after %d pings", i)
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				t.Fatalf("GOAWAY after %d pings: %v %q", i, f.ErrCode, f.DebugData())
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = fr.WriteSettingsAck()
				}
			case *http2.PingFrame:
				if f.IsAck() && f.Data[0] == byte(i) {
					acks++
					waiting = false
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if acks != pings {
		t.Fatalf("%d acks for %d pings", acks, pings)
	}
}
