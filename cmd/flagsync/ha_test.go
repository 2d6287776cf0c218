package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/transport"
)

// haReplica is one `flagsync run` of an HA pair.
type haReplica struct {
	*daemonProc
	name string
	file string // its own file output
}

func (r *haReplica) role() string {
	st, ok := r.status()
	if !ok {
		return ""
	}
	h, _ := st["ha"].(map[string]any)
	role, _ := h["role"].(string)
	return role
}

// TestHAE2E runs two replicas of the built binary on one Redis with a 2 s lease:
// exactly one publishes to Redis, a kill -9 of the leader hands over and the
// generation never goes backwards, and a leader cut off from its election backend
// steps down. Both replicas always write their own file.
func TestHAE2E(t *testing.T) {
	bin := buildFlagsync(t)
	t.Run("redis", func(t *testing.T) { haScenario(t, bin, "redis") })
	t.Run("consul", func(t *testing.T) { haScenario(t, bin, "consul") })
}

func haScenario(t *testing.T, bin, backend string) {
	dir := t.TempDir()
	rs := testsvc.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rc.Close() })
	var cs *testsvc.Consul
	flags := filepath.Join(dir, "flags.yaml")
	if err := transport.WriteFileAtomic(flags, []byte(flagDoc("a", "b", "c")), 0o644); err != nil {
		t.Fatal(err)
	}
	srcs := fmt.Sprintf("  - {name: git, type: file, path: %q}\n", flags)
	if backend == "consul" {
		cs = testsvc.StartConsul(t, testsvc.WithSessionTTLMin(time.Second))
		srcs += fmt.Sprintf("  - {name: kv, type: consul, address: %q, prefix: flags/}\n", cs.Addr)
	}
	prefix := transport.DefaultPrefix("ha")
	var reps []*haReplica
	for i := range 2 {
		name := fmt.Sprintf("replica-%d", i)
		e := &e2eEnv{t: t, bin: bin, dir: filepath.Join(dir, name)}
		if err := os.MkdirAll(e.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		e.config = filepath.Join(e.dir, "flagsync.yaml")
		e.out = filepath.Join(e.dir, "flags.json")
		e.listen = fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t))
		e.writeConfig(fmt.Sprintf("flagSetId: ha\nschedule: \"@every 1h\"\nwatchDebounce: 5ms\nsources:\n%soutputs:\n  file: {path: %q}\n  redis: {url: %q}\nhttp: {listen: %q}\nha: {enabled: true, backend: %s, ttl: 2s}\nlog: {level: debug}\n",
			srcs, e.out, "redis://"+rs.Addr+"/0", e.listen, backend))
		p := e.start("POD_NAME=" + name)
		reps = append(reps, &haReplica{daemonProc: p, name: name, file: e.out})
	}
	for _, r := range reps {
		r.waitReady()
	}

	// Watch the Redis generation the whole time: it must never go backwards.
	var mu sync.Mutex
	var backwards []string
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		last := int64(0)
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(5 * time.Millisecond):
			}
			g, err := transport.ReadGeneration(context.Background(), rc, prefix)
			if err != nil {
				continue
			}
			if g < last {
				mu.Lock()
				backwards = append(backwards, fmt.Sprintf("%d after %d", g, last))
				mu.Unlock()
			}
			last = max(last, g)
		}
	}()
	stopWatching := func() {
		close(stopWatch)
		<-watchDone
		mu.Lock()
		defer mu.Unlock()
		if len(backwards) > 0 {
			t.Errorf("Redis generation went backwards: %v", backwards)
		}
	}

	var leader, standby *haReplica
	eventually(t, "exactly one leader", func() bool {
		r0, r1 := reps[0].role(), reps[1].role()
		switch {
		case r0 == "leader" && r1 == "standby":
			leader, standby = reps[0], reps[1]
		case r1 == "leader" && r0 == "standby":
			leader, standby = reps[1], reps[0]
		default:
			return false
		}
		return true
	})
	eventually(t, "the leader's snapshot in Redis", func() bool {
		data, err := transport.Read(context.Background(), rc, prefix)
		return err == nil && strings.Contains(string(data), `"c"`)
	})
	for _, r := range reps {
		if set, err := loadFile(r.file); err != nil || set.Len() != 3 {
			t.Fatalf("%s file output: %v", r.name, err)
		}
		if !strings.Contains(r.out.String(), `msg=published output=file`) {
			t.Errorf("%s did not publish its file", r.name)
		}
	}
	for _, c := range []struct {
		r    *haReplica
		want string
	}{{leader, "role <b>leader</b>"}, {standby, "role <b>standby</b>"}} {
		resp, err := http.Get(c.r.http + "/")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(page), c.want) {
			t.Errorf("%s status page lacks %q", c.r.name, c.want)
		}
	}
	if strings.Contains(standby.out.String(), "msg=published output=redis") {
		t.Errorf("standby %s published to Redis:\n%s", standby.name, standby.out.String())
	}
	if strings.Contains(standby.out.String(), "output redis") {
		t.Errorf("standby %s reported a Redis output error", standby.name)
	}

	// kill -9 the leader, then change the flags: the standby takes over and publishes.
	if err := leader.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-leader.done
	killed := time.Now()
	if err := transport.WriteFileAtomic(flags, []byte(flagDoc("a", "b", "c", "d")), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the standby publishing after the leader died\n"+standby.out.String(), func() bool {
		data, err := transport.Read(context.Background(), rc, prefix)
		return err == nil && strings.Contains(string(data), `"d"`)
	})
	t.Logf("%s: new leader published %s after the kill (ttl 2s)", backend, time.Since(killed).Round(10*time.Millisecond))
	if standby.role() != "leader" {
		t.Errorf("new leader's status role = %q", standby.role())
	}
	if set, err := loadFile(standby.file); err != nil || set.Len() != 4 {
		t.Errorf("new leader's file: %v", err)
	}
	stopWatching()

	// Cut the new leader off from its election backend: it steps down.
	if backend == "consul" {
		cs.Stop()
	} else {
		rs.Stop()
	}
	eventually(t, "the partitioned leader stepping down\n"+standby.out.String(), func() bool {
		return standby.role() == "standby"
	})
	if !strings.Contains(standby.out.String(), "stepping down") {
		t.Errorf("no step-down in the log")
	}
}
