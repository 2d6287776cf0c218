package consul

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTLSSettingsReachTheClient checks caFile, serverName and insecureSkipVerify
// against a TLS server answering the KV list.
func TestTLSSettingsReachTheClient(t *testing.T) {
	isolateConsulEnv(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Consul-Index", "3")
		w.Header().Set("X-Consul-KnownLeader", "true")
		_, _ = w.Write([]byte(`[{"Key":"flags/a","Value":"dHJ1ZQ==","ModifyIndex":3}]`))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(srv.URL, "https://")
	ctx := context.Background()

	res, err := newSource(t, Config{Address: addr, Scheme: "https", CAFile: ca, ServerName: "example.com", Prefix: "flags/"}).Fetch(ctx)
	if err != nil || res.Overlays["a"].Value != true {
		t.Fatalf("with the CA: %+v, %v", res, err)
	}
	if _, err := newSource(t, Config{Address: addr, Scheme: "https", Prefix: "flags/"}).Fetch(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: err = %v, want a certificate error", err)
	}
	if _, err := newSource(t, Config{Address: addr, Scheme: "https", CAFile: ca, ServerName: "other.test", Prefix: "flags/"}).Fetch(ctx); err == nil || !strings.Contains(err.Error(), "other.test") {
		t.Fatalf("with a wrong serverName: err = %v, want a name mismatch", err)
	}
	if _, err := newSource(t, Config{Address: addr, Scheme: "https", InsecureSkipVerify: true, Prefix: "flags/"}).Fetch(ctx); err != nil {
		t.Fatalf("insecureSkipVerify: %v", err)
	}
}
