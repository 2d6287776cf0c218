package testsvc

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConsulStartStopRestart(t *testing.T) {
	c := StartConsul(t)
	client := &http.Client{}
	put := func() int {
		req, _ := http.NewRequest(http.MethodPut, c.URL()+"/v1/kv/k", nil)
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := put(); s != http.StatusOK {
		t.Fatalf("put: HTTP %d", s)
	}
	c.Stop()
	if s := put(); s != 0 {
		t.Fatalf("put after Stop answered HTTP %d", s)
	}
	c.Start()
	if _, s := c.get(client, "/v1/kv/k"); s != http.StatusNotFound {
		t.Fatalf("after a -dev restart the key should be gone, got HTTP %d", s)
	}
}

func TestConsulACL(t *testing.T) {
	c := StartConsul(t, WithACL())
	if c.ManagementToken == "" {
		t.Fatal("no management token")
	}
	client := &http.Client{}
	if _, s := c.get(client, "/v1/kv/?recurse"); s != http.StatusNotFound {
		t.Fatalf("management token: HTTP %d", s)
	}
	resp, err := client.Get(c.URL() + "/v1/kv/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("anonymous read with default deny: HTTP %d, want 403", resp.StatusCode)
	}
}

func TestConsulSessionTTLMin(t *testing.T) {
	c := StartConsul(t, WithSessionTTLMin(time.Second))
	req, _ := http.NewRequest(http.MethodPut, c.URL()+"/v1/session/create", strings.NewReader(`{"TTL":"2s"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Without the option Consul refuses TTLs below 10s with HTTP 500.
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("session with TTL 2s: HTTP %d %s, want 200", resp.StatusCode, body)
	}
}

// An agent whose HTTP port another agent already holds must be recognised as such
// (StartConsul then retries on other ports), never mistaken for ready.
func TestConsulPortTakenIsDetected(t *testing.T) {
	first := StartConsul(t)
	var port int
	if _, err := fmt.Sscanf(first.Addr, "127.0.0.1:%d", &port); err != nil {
		t.Fatal(err)
	}
	second := &Consul{t: t, bin: first.bin, node: "second", Addr: first.Addr}
	second.config = filepath.Join(t.TempDir(), "consul.hcl")
	hcl := consulHCL(second.node, port, FreePort(t), FreePort(t), FreePort(t), consulOptions{}, "")
	if err := os.WriteFile(second.config, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	err := second.start()
	if !errors.Is(err, errPortTaken) {
		t.Fatalf("start on a taken port: %v, want errPortTaken", err)
	}
}
