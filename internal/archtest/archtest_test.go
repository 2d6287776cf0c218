package archtest

import (
	"bufio"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const modulePath = "github.com/flagsync/flagsync"

// rule is one row of the package table in docs/ARCHITECTURE.md.
type rule struct {
	pkg     string   // path relative to the repository root, "cmd/flagsync"
	allowed []string // project packages ("flagset", "sources/...") and third-party module prefixes
}

var (
	rowPattern      = regexp.MustCompile("^\\| `([^`]+)` \\|[^|]*\\|([^|]*)\\|\\s*$")
	backtickPattern = regexp.MustCompile("`([^`]+)`")
)

// readRules parses the package table: a row starts with the package in backticks and
// ends with the may-import cell, whose backticked entries are the allowed imports.
func readRules(t *testing.T, root string) map[string]rule {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rules := map[string]rule{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := rowPattern.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		r := rule{pkg: strings.TrimSuffix(m[1], "/")}
		for _, a := range backtickPattern.FindAllStringSubmatch(m[2], -1) {
			r.allowed = append(r.allowed, strings.TrimSuffix(a[1], "/"))
		}
		if _, dup := rules[r.pkg]; dup {
			t.Errorf("ARCHITECTURE.md lists %s twice", r.pkg)
		}
		rules[r.pkg] = r
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rules
}

// packages lists every package of every module with its non-test imports.
func packages(t *testing.T, root string) map[string][]string {
	t.Helper()
	out, err := exec.Command(filepath.Join(root, "scripts", "go-modules.sh")).Output()
	if err != nil {
		t.Fatalf("scripts/go-modules.sh: %v", err)
	}
	pkgs := map[string][]string{}
	for _, mod := range strings.Fields(string(out)) {
		cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}", "./...")
		cmd.Dir = filepath.Join(root, mod)
		listed, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list in %s: %v", mod, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(listed)), "\n") {
			path, imports, _ := strings.Cut(line, "|")
			rel := strings.TrimPrefix(strings.TrimPrefix(path, modulePath), "/")
			pkgs[rel] = strings.Fields(imports)
		}
	}
	return pkgs
}

func allows(r rule, imp string) bool {
	if !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
		return true // the standard library
	}
	target := imp
	project := strings.HasPrefix(imp, modulePath+"/")
	if project {
		target = strings.TrimPrefix(imp, modulePath+"/")
	}
	for _, a := range r.allowed {
		switch {
		case strings.HasSuffix(a, "/..."):
			if base := strings.TrimSuffix(a, "/..."); target == base || strings.HasPrefix(target, base+"/") {
				return true
			}
		case project && target == a:
			return true
		case !project && (target == a || strings.HasPrefix(target, a+"/")):
			return true
		}
	}
	// A package may always use its own sub-packages (internal helpers, generated code).
	return project && strings.HasPrefix(target, r.pkg+"/")
}

func TestArchitectureTableIsTrue(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	rules := readRules(t, root)
	pkgs := packages(t, root)
	if len(pkgs) < 20 {
		t.Fatalf("found only %d packages: %v", len(pkgs), pkgs)
	}
	for _, pkg := range slices.Sorted(maps.Keys(pkgs)) {
		r, ok := rules[pkg]
		if !ok {
			t.Errorf("package %s is not in docs/ARCHITECTURE.md: add a row with its job and what it may import", pkg)
			continue
		}
		for _, imp := range pkgs[pkg] {
			if !allows(r, imp) {
				t.Errorf("%s imports %s, which its row in docs/ARCHITECTURE.md does not allow", pkg, imp)
			}
		}
	}
	for pkg := range rules {
		if _, ok := pkgs[pkg]; !ok {
			t.Errorf("docs/ARCHITECTURE.md lists %s, which is not a package", pkg)
		}
	}
}
