package ofrep_test

import (
	"testing"

	"github.com/flagsync/flagsync/ofrep"
	"github.com/flagsync/flagsync/ofrep/ofreptest"
)

// BenchmarkOFREPSingle measures single-flag evaluations per second through a real
// HTTP server on a loopback TCP listener, with parallel keep-alive clients.
func BenchmarkOFREPSingle(b *testing.B) {
	h, _ := newHandler(b, ofrep.Options{APIKeys: []string{"bench-key"}})
	ofreptest.BenchSingle(b, h, "bench-key")
}
