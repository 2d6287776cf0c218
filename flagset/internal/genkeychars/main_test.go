package main

import (
	"os"
	"testing"
	"unicode"
)

// TestTablesUpToDate: the committed Go and Python tables are exactly what the
// generator writes, so the two readers share one definition of a flag key.
func TestTablesUpToDate(t *testing.T) {
	if unicode.Version != Version {
		t.Fatalf("this Go has Unicode %s; the key table is pinned to %s: compare against a pinned copy instead", unicode.Version, Version)
	}
	ranges := Ranges()
	for path, want := range map[string]string{
		"../../keychars.go":                         GoSource(ranges),
		"../../../python/src/flagsync/_keychars.py": PythonSource(ranges),
	} {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s is not what genkeychars writes: run (cd flagset && go run ./internal/genkeychars)", path)
		}
	}
}
