package testsvc

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// Moto is a real moto_server (a local AWS API emulator) owned by a test.
type Moto struct {
	Port int
	// URL is the endpoint to give the AWS SDK as BaseEndpoint, e.g. http://127.0.0.1:port.
	URL  string
	proc *process
}

// StartMoto starts moto_server on a free loopback port and stops it when the test
// ends. The binary comes from the project venv (.venv/bin, made by make test) or PATH.
func StartMoto(t testing.TB) *Moto {
	t.Helper()
	bin := motoBinary(t)
	m := &Moto{Port: FreePort(t)}
	m.URL = fmt.Sprintf("http://127.0.0.1:%d", m.Port)
	m.proc = startProcess(t, "moto", bin, "-H", "127.0.0.1", "-p", strconv.Itoa(m.Port))
	t.Cleanup(m.proc.kill)
	if err := waitHTTP(m.URL+"/moto-api/", 60*time.Second); err != nil {
		tail := m.proc.logTail()
		m.proc.kill()
		t.Fatalf("moto_server: %v\n%s", err, tail)
	}
	return m
}

// IsolateAWS points the test's AWS environment (for the SDK's default credential
// chain) at moto's static test credentials only, with region (may be ""), no session
// token or profile, config and credentials files that do not exist and no instance
// metadata: no developer profile or instance role is ever used by a test. moto_server
// inherits the environment, so start it before calling IsolateAWS.
func IsolateAWS(t testing.TB, region string) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_REGION": region, "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
	} {
		t.Setenv(k, v)
	}
}

func motoBinary(t testing.TB) string {
	t.Helper()
	if root := repoRoot(); root != "" {
		p := filepath.Join(root, ".venv", "bin", "moto_server")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return LookPath(t, "moto_server", "make test installs moto[server] from scripts/requirements-test.txt into .venv")
}

// repoRoot is the flagsync checkout this file belongs to ("" if unknown).
func repoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// waitHTTP waits until url answers any HTTP status.
func waitHTTP(url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not answering after %s: %w", url, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
