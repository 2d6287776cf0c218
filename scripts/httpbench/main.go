// Command httpbench measures how `flagsync run` holds up against connection abuse on
// loopback (issue #14): many idle keep-alive connections (are they all closed by the
// idle timeout, and what is the daemon's peak RSS meanwhile?) and a slow-body client
// (is it cut at the read timeout?).
//
//	go build -o /tmp/flagsync ./cmd/flagsync
//	go run ./scripts/httpbench -bin /tmp/flagsync -conns 10000 -idle 5s -read 5s
//
// It starts the daemon itself with a throw-away configuration on a free loopback port
// and stops it at the end. Only loopback is used.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "", "flagsync binary (required)")
	conns := flag.Int("conns", 10000, "idle keep-alive connections to open")
	idle := flag.Duration("idle", 0, "http.limits.idleTimeout for the daemon (0: the default)")
	read := flag.Duration("read", 0, "http.limits.readTimeout for the daemon (0: the default)")
	maxConns := flag.Int("max-conns", 0, "http.limits.maxConnections (0: the default)")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "httpbench: -bin is required")
		os.Exit(2)
	}
	raiseFileLimit(*conns + 1000)
	d, err := startDaemon(*bin, *idle, *read, *maxConns)
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpbench:", err)
		os.Exit(1)
	}
	defer d.stop()
	fmt.Printf("daemon pid %d on %s, RSS at start %.1f MB\n", d.cmd.Process.Pid, d.addr, mb(rssKB(d.cmd.Process.Pid)))

	peak := &peakRSS{pid: d.cmd.Process.Pid}
	go peak.sample()
	idleConns(d.addr, *conns, peak)
	slowBody(d.addr)
	fmt.Printf("peak daemon RSS over the whole run: %.1f MB (goal <= 64 MB)\n", mb(peak.max.Load()))
}

// idleConns opens n keep-alive connections that each send one request and then stay
// idle, and waits until the daemon has closed every one of them.
func idleConns(addr string, n int, peak *peakRSS) {
	start := time.Now()
	var answered, closed, failed atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 512) // dial concurrency
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 5*time.Minute)
			<-sem
			if err != nil {
				failed.Add(1)
				return
			}
			defer c.Close()
			if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
				failed.Add(1)
				return
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				failed.Add(1)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			answered.Add(1)
			// Idle: the next read returns when the server closes the connection.
			if _, err := br.ReadByte(); err != nil {
				closed.Add(1)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			fmt.Printf("idle connections: %d opened, %d answered, %d closed by the daemon, %d failed, all gone after %s; peak RSS so far %.1f MB\n",
				n, answered.Load(), closed.Load(), failed.Load(), time.Since(start).Round(100*time.Millisecond), mb(peak.max.Load()))
			return
		case <-tick.C:
			fmt.Printf("  %6.1fs: answered %d, closed by daemon %d, daemon fds %d, RSS %.1f MB\n",
				time.Since(start).Seconds(), answered.Load(), closed.Load(), fdCount(peak.pid), mb(rssKB(peak.pid)))
		}
	}
}

// slowBody sends a request whose 1000-byte body arrives one byte a second, and
// reports when the daemon cuts it.
func slowBody(addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		fmt.Println("slow body: dial:", err)
		return
	}
	defer c.Close()
	start := time.Now()
	_, _ = io.WriteString(c, "POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	cut := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(c) // until the daemon closes
		line, _, _ := strings.Cut(string(b), "\r\n")
		cut <- line
	}()
	for i := 0; ; i++ {
		select {
		case line := <-cut:
			fmt.Printf("slow body: cut by the daemon after %s (%d body bytes sent; response %q)\n", time.Since(start).Round(100*time.Millisecond), i+1, line)
			return
		case <-time.After(time.Second):
			if _, err := io.WriteString(c, " "); err != nil {
				fmt.Printf("slow body: write failed after %s: %v\n", time.Since(start).Round(100*time.Millisecond), err)
				return
			}
			if i > 300 {
				fmt.Println("slow body: still open after 300 s")
				return
			}
		}
	}
}

type daemon struct {
	cmd  *exec.Cmd
	addr string
	dir  string
}

func startDaemon(bin string, idle, read time.Duration, maxConns int) (*daemon, error) {
	dir, err := os.MkdirTemp("", "httpbench")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	flags := filepath.Join(dir, "flags.yaml")
	var b strings.Builder
	b.WriteString("flags:\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, "  f%03d: {state: ENABLED, variants: {on: true, off: false}, defaultVariant: \"off\"}\n", i)
	}
	if err := os.WriteFile(flags, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	limits := []string{}
	if idle > 0 {
		limits = append(limits, "idleTimeout: "+idle.String())
	}
	if read > 0 {
		limits = append(limits, "readTimeout: "+read.String())
	}
	if maxConns > 0 {
		limits = append(limits, "maxConnections: "+strconv.Itoa(maxConns))
	}
	cfg := fmt.Sprintf("flagSetId: bench\nschedule: \"@every 1h\"\nsources: [{name: git, type: file, path: %q}]\noutputs: {file: {path: %q}}\nhttp: {listen: %q, limits: {%s}}\nlog: {level: warn}\n",
		flags, filepath.Join(dir, "out.json"), addr, strings.Join(limits, ", "))
	config := filepath.Join(dir, "flagsync.yaml")
	if err := os.WriteFile(config, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", config)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &daemon{cmd: cmd, addr: addr, dir: dir}
	for i := 0; i < 300; i++ {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return d, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.stop()
	return nil, fmt.Errorf("daemon not ready on %s", addr)
}

func (d *daemon) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	_, _ = d.cmd.Process.Wait()
	_ = os.RemoveAll(d.dir)
}

type peakRSS struct {
	pid int
	max atomic.Int64 // KB
}

func (p *peakRSS) sample() {
	for {
		if kb := rssKB(p.pid); kb > p.max.Load() {
			p.max.Store(kb)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rssKB is VmRSS of pid in KB (0 when unknown).
func rssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func fdCount(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

func mb(kb int64) float64 { return float64(kb) / 1024 }

// raiseFileLimit lifts this process's open-file limit to n (within the hard limit).
func raiseFileLimit(n int) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return
	}
	if uint64(n) > l.Cur {
		l.Cur = min(uint64(n), l.Max)
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
