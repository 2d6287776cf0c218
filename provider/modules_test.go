package provider

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Budgets for what an application's module graph gains by importing the four lean
// modules (provider, flagset, transport, analytics) on top of the OpenFeature Go
// SDK it imports anyway. Raising one is a decision for the change that needs it
// (docs/ARCHITECTURE.md "Modules and releases").
const (
	// Modules in the app's `go list -m all` that an app importing only the
	// OpenFeature SDK does not list: our four, the test-service module our tests
	// require, go-redis and its go.mod requirements, fsnotify and x/sys.
	maxAddedModules = 14
	// Modules whose packages are compiled into the app, the app included.
	maxLinkedModules = 12
)

// daemonOnly are module path prefixes that belong to the daemon and must never reach
// an application that imports the lean modules.
var daemonOnly = []string{
	"github.com/aws/",
	"github.com/hashicorp/consul",
	"github.com/prometheus/",
	"github.com/robfig/",
	"github.com/santhosh-tekuri/",
	"google.golang.org/grpc",
	"github.com/flagsync/flagsync ", // the daemon module itself (path followed by its version)
}

// TestAppModuleGraph builds a throwaway application module that imports the lean
// modules from this checkout, as an app would import a release, and checks what its
// module graph lists.
func TestAppModuleGraph(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	sdk := strings.TrimSpace(goCmd(t, ".", "list", "-m", "-f", "{{.Version}}", "github.com/open-feature/go-sdk"))

	baseline := appModule(t, []string{"github.com/open-feature/go-sdk/openfeature"},
		"require github.com/open-feature/go-sdk "+sdk+"\n")
	var replaces strings.Builder
	replaces.WriteString("require github.com/open-feature/go-sdk " + sdk + "\n")
	for _, m := range []string{"analytics", "flagset", "internal/testsvc", "provider", "transport"} {
		replaces.WriteString("replace github.com/flagsync/flagsync/" + m + " => " + filepath.Join(root, m) + "\n")
	}
	lean := []string{
		"github.com/flagsync/flagsync/analytics",
		"github.com/flagsync/flagsync/flagset",
		"github.com/flagsync/flagsync/provider",
		"github.com/flagsync/flagsync/transport",
	}
	app := appModule(t, lean, replaces.String())

	listed := strings.Split(strings.TrimSpace(goCmd(t, app, "list", "-m", "all")), "\n")
	base := strings.Split(strings.TrimSpace(goCmd(t, baseline, "list", "-m", "all")), "\n")
	basePaths := map[string]bool{}
	for _, line := range base {
		basePaths[strings.Fields(line)[0]] = true
	}
	var added []string
	for _, line := range listed[1:] { // the first line is the app itself
		for _, banned := range daemonOnly {
			if strings.HasPrefix(line+" ", banned) {
				t.Errorf("the app's module graph lists daemon-only %q", line)
			}
		}
		if path := strings.Fields(line)[0]; !basePaths[path] {
			added = append(added, path)
		}
	}
	linked := slices.Compact(slices.Sorted(slices.Values(strings.Fields(
		goCmd(t, app, "list", "-deps", "-f", "{{with .Module}}{{.Path}}{{end}}", ".")))))
	t.Logf("app module graph: %d modules listed (OpenFeature SDK alone: %d), %d added by flagsync, %d linked",
		len(listed), len(base), len(added), len(linked))
	if len(added) > maxAddedModules {
		t.Errorf("flagsync adds %d modules to an app's graph (budget %d): %v", len(added), maxAddedModules, added)
	}
	if len(linked) > maxLinkedModules {
		t.Errorf("%d modules are compiled into the app (budget %d): %v", len(linked), maxLinkedModules, linked)
	}
}

// appModule writes a main package importing imports into a new module with the
// given go.mod tail, tidies it and returns its directory.
func appModule(t *testing.T, imports []string, goModTail string) string {
	t.Helper()
	dir := t.TempDir()
	var main strings.Builder
	main.WriteString("package main\n\nimport (\n")
	for _, imp := range imports {
		main.WriteString("\t_ \"" + imp + "\"\n")
	}
	main.WriteString(")\n\nfunc main() {}\n")
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/app\n\ngo 1.26\n\n"+goModTail)
	write("main.go", main.String())
	goCmd(t, dir, "mod", "tidy")
	return dir
}

func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, stderr)
	}
	return string(out)
}
