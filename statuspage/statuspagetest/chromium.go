// Package statuspagetest renders a served status page in a real headless Chromium for
// tests: the DOM the browser builds, and a screenshot for humans.
package statuspagetest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/testsvc"
)

// Browser is a headless Chromium with its own throw-away profile.
type Browser struct {
	t       testing.TB
	bin     string
	profile string
}

// NewBrowser finds chromium on PATH (a missing browser fails the test).
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	return &Browser{t: t, bin: testsvc.LookPath(t, "chromium", "make deps installs it with scripts/ensure-chromium.sh"), profile: t.TempDir()}
}

func (b *Browser) run(url string, extra ...string) []byte {
	b.t.Helper()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--disable-dev-shm-usage", "--user-data-dir=" + b.profile}, append(extra, url)...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, b.bin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.t.Fatalf("chromium %v: %v\n%s", extra, err, stderr.String())
	}
	return out
}

// DOM returns the document Chromium built from url.
func (b *Browser) DOM(url string) string {
	b.t.Helper()
	return string(b.run(url, "--dump-dom"))
}

// Screenshot saves url as a PNG at path (its directory is created) and fails the
// test when the image is missing or implausibly small.
func (b *Browser) Screenshot(url, path string) {
	b.t.Helper()
	shot, err := filepath.Abs(path)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
		b.t.Fatal(err)
	}
	_ = os.Remove(shot)
	b.run(url, "--screenshot="+shot, "--window-size=1280,900", "--hide-scrollbars")
	st, err := os.Stat(shot)
	if err != nil || st.Size() < 10_000 {
		b.t.Fatalf("screenshot %s missing or tiny: %v", shot, err)
	}
	b.t.Logf("screenshot: %s (%d bytes)", shot, st.Size())
}
