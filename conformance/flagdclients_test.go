package conformance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/transport"
)

// The flagd client proof: OpenFeature's flagd providers for Node and Java (code nobody here
// wrote, conformance/clients/) connect in their in-process mode to one `flagsync run` daemon
// whose flagd sync listener serves every conformance flag file, evaluate every case, and must
// answer exactly as flagsync does on the same snapshot — except for the cases listed, each
// with both answers and a reason, in clients/differences.json (docs/FORMAT.md, "flagd's
// in-process providers"). Then a source file changes and both must see the new value.

// flagdClientTimeout bounds every wait of this test (daemon start, a client's connection, its
// noticing a change): a failure bound for a slow CI machine, not a timing assertion.
const flagdClientTimeout = 2 * time.Minute

// watchedFlag is the flag the test changes in a source after the clients have answered.
const watchedFlag = "flagd_clients_watched"

// clientAnswer is one result line of a conformance client, and of `flagsync eval`.
type clientAnswer struct {
	Value     any     `json:"value"`
	Variant   *string `json:"variant"`
	Reason    *string `json:"reason"`
	ErrorCode *string `json:"errorCode"`
}

func (a clientAnswer) equal(b clientAnswer) bool {
	return reflect.DeepEqual(normalize(a.Value), normalize(b.Value)) &&
		show(a.Variant) == show(b.Variant) && show(a.Reason) == show(b.Reason) && show(a.ErrorCode) == show(b.ErrorCode)
}

func (a clientAnswer) String() string {
	b, _ := json.Marshal(a)
	return string(b)
}

// knownDifference is one allow-listed case: their answer, ours, and the key of the reason.
type knownDifference struct {
	Reason string       `json:"reason"`
	Theirs clientAnswer `json:"theirs"`
	Ours   clientAnswer `json:"ours"`
}

// differencesFile is clients/differences.json.
type differencesFile struct {
	Reasons map[string]string                     `json:"reasons"`
	Clients map[string]map[string]knownDifference `json:"clients"`
}

// flagdClient is how to run one conformance client.
type flagdClient struct {
	name string
	argv []string // program and its leading arguments
}

// flagdClients finds both built clients, or fails saying how to build them.
func flagdClients(t *testing.T) []flagdClient {
	t.Helper()
	const fix = "run scripts/ensure-flagd-clients.sh (part of make deps / make test)"
	for _, tool := range []string{"node", "java"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("flagd clients: %s is not on PATH: %s", tool, fix)
		}
	}
	nodeDir, _ := filepath.Abs(filepath.Join("clients", "node"))
	jar, _ := filepath.Abs(filepath.Join("clients", "java", "target", "flagd-client.jar"))
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "@openfeature", "flagd-provider")); err != nil {
		t.Fatalf("flagd clients: the Node client's dependencies are not installed (%v): %s", err, fix)
	}
	if _, err := os.Stat(jar); err != nil {
		t.Fatalf("flagd clients: the Java client is not built (%v): %s", err, fix)
	}
	return []flagdClient{
		{name: "node", argv: []string{"node", filepath.Join(nodeDir, "client.js")}},
		{name: "java", argv: []string{"java", "-jar", jar}},
	}
}

// mergedSuites writes every suite's flag file as one file source each (JSON, canonical) into
// dir and returns the source paths and all cases in suite order. Flag keys must be unique
// across sources, so a key already defined by an earlier suite is renamed <key>_<suite>, in
// its flag file and its cases alike.
func mergedSuites(t *testing.T, dir string) (sources []string, cases []testCase) {
	t.Helper()
	owner := map[string]string{}
	for _, s := range loadSuites(t) {
		data, err := os.ReadFile(s.Flags)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := flagset.Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", s.Flags, err)
		}
		suite := strings.TrimSuffix(filepath.Base(s.Cases), ".jsonl")
		renamed := map[string]string{}
		for _, key := range sortedFlagKeys(doc) {
			if _, taken := owner[key]; !taken {
				owner[key] = suite
				continue
			}
			to := key + "_" + suite
			if _, taken := owner[to]; taken || doc.Flags[to] != nil {
				t.Fatalf("%s: cannot rename %q to %q: taken", s.Flags, key, to)
			}
			doc.Flags[to] = doc.Flags[key]
			delete(doc.Flags, key)
			owner[to], renamed[key] = suite, to
		}
		// Every flag, the invalid ones too: the daemon withholding them is part of the test.
		out, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("%s: encode: %v", s.Flags, err)
		}
		path := filepath.Join(dir, suite+".json")
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		sources = append(sources, path)
		for _, c := range s.cases {
			if to, ok := renamed[c.Flag]; ok {
				c.Flag = to
			}
			cases = append(cases, c)
		}
	}
	if _, taken := owner[watchedFlag]; taken {
		t.Fatalf("the conformance flags define %q, the flag this test changes", watchedFlag)
	}
	return sources, cases
}

func sortedFlagKeys(doc *flagset.Document) []string {
	keys := make([]string, 0, len(doc.Flags))
	for k := range doc.Flags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// watchedDoc is the source file holding the flag the test changes.
func watchedDoc(variant string) []byte {
	return fmt.Appendf(nil, `{"flags": {%q: {"state": "ENABLED", "variants": {"one": "one", "two": "two"}, "defaultVariant": %q}}}`, watchedFlag, variant)
}

// syncDaemon is a running `flagsync run` with the flagd sync listener on syncAddr.
type syncDaemon struct {
	cmd      *exec.Cmd
	log      *bytes.Buffer
	logMu    *sync.Mutex
	done     chan struct{}
	out      string // the file output: the snapshot the daemon serves
	syncAddr string
}

func (d *syncDaemon) logText() string {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	return d.log.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// startSyncDaemon runs the daemon over the given file sources and waits until it has
// published and its flagd sync port accepts connections. The test's cleanup stops it.
func startSyncDaemon(t *testing.T, dir string, sources []string) *syncDaemon {
	t.Helper()
	d := &syncDaemon{
		log: &bytes.Buffer{}, logMu: &sync.Mutex{}, done: make(chan struct{}),
		out:      filepath.Join(dir, "out", "flags.json"),
		syncAddr: fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t)),
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "flagSetId: conformance\nschedule: \"@every 1h\"\nwatchDebounce: 5ms\nsources:\n")
	for _, src := range sources {
		name := strings.TrimSuffix(filepath.Base(src), ".json")
		fmt.Fprintf(&cfg, "  - {name: %q, type: file, path: %q}\n", name, src)
	}
	fmt.Fprintf(&cfg, "outputs:\n  file: {path: %q}\n", d.out)
	fmt.Fprintf(&cfg, "http: {listen: %q}\n", fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t)))
	fmt.Fprintf(&cfg, "flagdSync: {enabled: true, listen: %q}\n", d.syncAddr)
	config := filepath.Join(dir, "flagsync.yaml")
	if err := os.WriteFile(config, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(flagsyncBinary(t), "run", "--config", config)
	d.cmd.Dir = dir
	w := lockedWriter{mu: d.logMu, w: d.log}
	d.cmd.Stdout, d.cmd.Stderr = w, w
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
	deadline := time.Now().Add(flagdClientTimeout)
	for {
		_, statErr := os.Stat(d.out)
		conn, dialErr := net.DialTimeout("tcp", d.syncAddr, time.Second)
		if conn != nil {
			conn.Close()
		}
		if statErr == nil && dialErr == nil {
			return d
		}
		select {
		case <-d.done:
			t.Fatalf("flagsync run exited before serving:\n%s", d.logText())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("flagsync run: no snapshot (%v) or no flagd sync port (%v) after %s:\n%s", statErr, dialErr, flagdClientTimeout, d.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// casesFile writes the cases as a JSONL file every client and `flagsync eval` can read.
func casesFile(t *testing.T, dir string, cases []testCase) string {
	t.Helper()
	var b bytes.Buffer
	for _, c := range cases {
		line, err := json.Marshal(map[string]any{"name": c.Name, "flag": c.Flag, "type": c.Type, "default": c.Default, "context": c.Context})
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	path := filepath.Join(dir, "cases.jsonl")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// ourAnswers is `flagsync eval` on the snapshot the daemon serves, at the current time (the
// clients read the wall clock for $flagd.timestamp too).
func ourAnswers(t *testing.T, snapshot, cases string, n int) []clientAnswer {
	t.Helper()
	cmd := exec.Command(flagsyncBinary(t), "eval", "--flags", snapshot, "--cases", cases)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("flagsync eval: %v\n%s", err, stderr.String())
	}
	return decodeAnswers(t, "flagsync eval", stdout.Bytes(), n)
}

func decodeAnswers(t *testing.T, who string, out []byte, n int) []clientAnswer {
	t.Helper()
	var answers []clientAnswer
	for _, line := range bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n")) {
		var a clientAnswer
		if err := json.Unmarshal(line, &a); err != nil {
			t.Fatalf("%s: output line %q: %v", who, line, err)
		}
		answers = append(answers, a)
	}
	if len(answers) != n {
		t.Fatalf("%s: %d answers for %d cases", who, len(answers), n)
	}
	return answers
}

// runningClient is a client process: its answers, then its watch lines.
type runningClient struct {
	flagdClient
	cmd    *exec.Cmd
	lines  chan []byte // stdout, line by line; closed at EOF
	stderr *bytes.Buffer
	done   chan error
}

func startClient(t *testing.T, c flagdClient, syncAddr, cases string) *runningClient {
	t.Helper()
	host, port, _ := net.SplitHostPort(syncAddr)
	watch, _ := json.Marshal(map[string]any{"flag": watchedFlag, "type": "string", "default": "none", "context": map[string]any{}})
	args := append(append([]string{}, c.argv[1:]...), "--host", host, "--port", port, "--selector", "conformance",
		"--timeout-ms", fmt.Sprint(flagdClientTimeout.Milliseconds()), "--cases", cases, "--watch", string(watch))
	rc := &runningClient{flagdClient: c, cmd: exec.Command(c.argv[0], args...), lines: make(chan []byte, 1024), stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	rc.cmd.Stderr = rc.stderr
	stdout, err := rc.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.cmd.Start(); err != nil {
		t.Fatalf("%s client: %v", c.name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			rc.lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(rc.lines)
		rc.done <- rc.cmd.Wait()
	}()
	t.Cleanup(func() {
		if rc.cmd.ProcessState == nil {
			_ = rc.cmd.Process.Kill()
		}
	})
	return rc
}

// next returns the client's next output line, failing the test when it ends or stalls.
func (rc *runningClient) next(t *testing.T, what string) []byte {
	t.Helper()
	select {
	case line, ok := <-rc.lines:
		if ok {
			return line
		}
		err := <-rc.done
		rc.done <- err
		t.Fatalf("%s client ended (%v) before %s; stderr:\n%s", rc.name, err, what, tail(rc.stderr.String()))
	case <-time.After(flagdClientTimeout):
		t.Fatalf("%s client: no %s within %s; stderr:\n%s", rc.name, what, flagdClientTimeout, tail(rc.stderr.String()))
	}
	return nil
}

// tail keeps the end of a long stderr (the Java provider logs whole schema reports).
func tail(s string) string {
	const max = 4000
	if len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}

type watchLine struct {
	Watch string `json:"watch"`
	Value any    `json:"value"`
}

func (rc *runningClient) watchEvent(t *testing.T, want string) watchLine {
	t.Helper()
	line := rc.next(t, "the watch line "+want)
	var w watchLine
	if err := json.Unmarshal(line, &w); err != nil || w.Watch != want {
		t.Fatalf("%s client: want a %q watch line, got %q (%v)", rc.name, want, line, err)
	}
	return w
}

func readDifferences(t *testing.T) differencesFile {
	t.Helper()
	var d differencesFile
	data, err := os.ReadFile(filepath.Join("clients", "differences.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("clients/differences.json: %v", err)
	}
	return d
}

// compareWithAllowList fails on every case where the client's answer differs from ours and
// the allow-list does not record exactly that difference, and on every allow-listed case that
// no longer differs (so the list stays exact). A failure prints the entry to add.
func compareWithAllowList(t *testing.T, client string, cases []testCase, theirs, ours []clientAnswer, known map[string]knownDifference, reasons map[string]string) {
	t.Helper()
	seen := map[string]bool{}
	for i, c := range cases {
		k, listed := known[c.Name]
		seen[c.Name] = true
		switch {
		case theirs[i].equal(ours[i]) && listed:
			t.Errorf("%s: %q is allow-listed (%s) but the answers agree now (%s): remove it from clients/differences.json", client, c.Name, k.Reason, ours[i])
		case theirs[i].equal(ours[i]):
		case !listed:
			entry, _ := json.Marshal(map[string]any{c.Name: knownDifference{Reason: "?", Theirs: theirs[i], Ours: ours[i]}})
			t.Errorf("%s: %q differs from flagsync and is not allow-listed:\n  theirs %s\n  ours   %s\n  entry: %s", client, c.Name, theirs[i], ours[i], entry)
		case !k.Theirs.equal(theirs[i]) || !k.Ours.equal(ours[i]):
			t.Errorf("%s: %q differs otherwise than allow-listed:\n  theirs %s (listed %s)\n  ours   %s (listed %s)", client, c.Name, theirs[i], k.Theirs, ours[i], k.Ours)
		case reasons[k.Reason] == "":
			t.Errorf("%s: %q names reason %q, which clients/differences.json does not explain", client, c.Name, k.Reason)
		}
	}
	for name := range known {
		if !seen[name] {
			t.Errorf("%s: allow-listed case %q is not a conformance case", client, name)
		}
	}
}

// wallClockCases are the cases whose expectation holds at the suite's fixed `now` only: the
// clients and `flagsync eval` here read the wall clock.
var wallClockCases = map[string]bool{"basic/$flagd.timestamp > now is false": true}

// checkOursMatchSuite ties "ours" to the suite: on the daemon's snapshot flagsync answers as
// the suite expects, except for flags the daemon withheld (a load problem: the source's value
// is rejected, so the flag is absent → FLAG_NOT_FOUND) and the wall-clock cases.
func checkOursMatchSuite(t *testing.T, snapshot string, cases []testCase, ours []clientAnswer) {
	t.Helper()
	data, err := os.ReadFile(snapshot)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := flagset.Parse(data)
	if err != nil {
		t.Fatalf("%s: %v", snapshot, err)
	}
	for i, c := range cases {
		want := clientAnswer{Value: c.Expect.Value, Variant: c.Expect.Variant, Reason: &c.Expect.Reason, ErrorCode: c.Expect.ErrorCode}
		if want.equal(ours[i]) || wallClockCases[c.Name] {
			continue
		}
		if _, published := doc.Flags[c.Flag]; !published && show(ours[i].ErrorCode) == `"FLAG_NOT_FOUND"` {
			continue
		}
		t.Errorf("flagsync eval on the daemon's snapshot: case %q: got %s, the suite expects %s", c.Name, ours[i], want)
	}
}

func TestFlagdClientsInProcess(t *testing.T) {
	clients := flagdClients(t)
	known := readDifferences(t)
	dir := t.TempDir()
	sources, cases := mergedSuites(t, dir)
	watched := filepath.Join(dir, "watched.json")
	if err := transport.WriteFileAtomic(watched, watchedDoc("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startSyncDaemon(t, dir, append(sources, watched))
	casesPath := casesFile(t, dir, cases)

	// Both clients at once: each answers every case, then watches the flag.
	running := make([]*runningClient, len(clients))
	for i, c := range clients {
		running[i] = startClient(t, c, d.syncAddr, casesPath)
	}
	theirs := map[string][]clientAnswer{}
	for _, rc := range running {
		var out bytes.Buffer
		for range cases {
			out.Write(rc.next(t, "all case answers"))
			out.WriteByte('\n')
		}
		theirs[rc.name] = decodeAnswers(t, rc.name+" client", out.Bytes(), len(cases))
		if w := rc.watchEvent(t, "initial"); w.Value != "one" {
			t.Fatalf("%s client: %s is %v before the change, want one", rc.name, watchedFlag, w.Value)
		}
	}
	// The snapshot the clients answered from (nothing has changed since they connected).
	ours := ourAnswers(t, d.out, casesPath, len(cases))
	checkOursMatchSuite(t, d.out, cases, ours)
	for _, rc := range running {
		compareWithAllowList(t, rc.name, cases, theirs[rc.name], ours, known.Clients[rc.name], known.Reasons)
	}

	// A change in a source reaches both clients through the daemon (replaced atomically, as
	// an editor or git does, so the daemon never reads a half-written file).
	if err := transport.WriteFileAtomic(watched, watchedDoc("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, rc := range running {
		if w := rc.watchEvent(t, "changed"); w.Value != "two" {
			t.Errorf("%s client: %s changed to %v, want two", rc.name, watchedFlag, w.Value)
		}
		var err error
		select {
		case err = <-rc.done:
		case <-time.After(flagdClientTimeout):
			err = errors.New("still running")
		}
		if err != nil {
			t.Errorf("%s client: %v; stderr:\n%s", rc.name, err, tail(rc.stderr.String()))
		}
	}
}

// TestFlagdDifferencesDocumented: every reason of the allow-list is explained in
// docs/FORMAT.md under its key, and names at least one case.
func TestFlagdDifferencesDocumented(t *testing.T) {
	known := readDifferences(t)
	format, err := os.ReadFile(filepath.Join("..", "docs", "FORMAT.md"))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for client, cases := range known.Clients {
		if client != "node" && client != "java" {
			t.Errorf("clients/differences.json: unknown client %q", client)
		}
		for name, k := range cases {
			if known.Reasons[k.Reason] == "" {
				t.Errorf("%s: %q: reason %q is not in reasons", client, name, k.Reason)
			}
			used[k.Reason] = true
		}
	}
	for key := range known.Reasons {
		if !used[key] {
			t.Errorf("clients/differences.json: reason %q names no case", key)
		}
		if !bytes.Contains(format, []byte("`"+key+"`")) {
			t.Errorf("docs/FORMAT.md does not explain difference `%s`", key)
		}
	}
}

// TestFlagdClientsReportNoConnection: with nothing listening on the port, each client gives
// up after its timeout with exit code 1 and a message naming the address, instead of
// retrying for ever or printing answers.
func TestFlagdClientsReportNoConnection(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t))
	host, port, _ := net.SplitHostPort(addr)
	cases := filepath.Join(t.TempDir(), "cases.jsonl")
	if err := os.WriteFile(cases, []byte(`{"flag":"f","type":"boolean","default":false,"context":{}}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, c := range flagdClients(t) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := append(append([]string{}, c.argv[1:]...), "--host", host, "--port", port, "--timeout-ms", "2000", "--cases", cases)
			cmd := exec.Command(c.argv[0], args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("%s client: want exit code 1, got %v", c.name, err)
			}
			if want := "cannot connect to flagd sync at " + addr; !strings.Contains(stderr.String(), want) {
				t.Errorf("%s client: stderr lacks %q:\n%s", c.name, want, tail(stderr.String()))
			}
			if stdout.Len() != 0 {
				t.Errorf("%s client: printed answers without a connection: %s", c.name, stdout.String())
			}
		}()
	}
	wg.Wait()
}
