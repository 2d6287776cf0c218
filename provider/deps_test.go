package provider

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoHeavyDependencies keeps the provider lean: applications importing it must
// not pull in the daemon's source SDKs or its scheduler.
func TestNoHeavyDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./provider/...: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !contains(deps, "github.com/open-feature/go-sdk/openfeature") {
		t.Fatalf("go list -deps looks wrong (%d packages):\n%s", len(deps), out)
	}
	for _, dep := range deps {
		for _, banned := range []string{"github.com/aws/", "github.com/hashicorp/", "github.com/robfig/cron"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("provider depends on %s (banned prefix %s)", dep, banned)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
