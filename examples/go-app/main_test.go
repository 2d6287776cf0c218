package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/flagsync/flagsync/provider"
	"github.com/flagsync/flagsync/transport"
)

func snapshot(betaDefault string) []byte {
	return []byte(`{"flags": {"beta_mode": {"state": "ENABLED", "variants": {"on": true, "off": false},
		"defaultVariant": "` + betaDefault + `"}}, "metadata": {"flagSetId": "go-app-test"}}`)
}

func getData(t *testing.T, url string) data {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/data", nil)
	req.Header.Set("X-User-Id", "user-1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /data: %s", res.Status)
	}
	var d data
	if err := json.NewDecoder(res.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDataFollowsBetaMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	if err := transport.WriteFileAtomic(path, snapshot("off"), 0o644); err != nil {
		t.Fatal(err)
	}
	api := isolated.NewAPI()
	t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	changed := make(chan struct{}, 4)
	onChange := func(openfeature.EventDetails) { changed <- struct{}{} }
	api.AddHandler(openfeature.ProviderConfigChange, &onChange)
	if err := api.SetProviderAndWait(context.Background(), provider.NewFile(path)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newHandler(api.NewClient()))
	t.Cleanup(srv.Close)

	if d := getData(t, srv.URL); d.Mode != "classic" || d.User != "user-1" || d.Variant != "off" {
		t.Fatalf("with beta_mode off: %+v, want classic", d)
	}
	if err := transport.WriteFileAtomic(path, snapshot("on"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("the provider did not pick up the flipped flag")
	}
	if d := getData(t, srv.URL); d.Mode != "beta" || len(d.Items) != 3 {
		t.Fatalf("with beta_mode on: %+v, want beta", d)
	}
}

func TestDataDefaultsToClassicWithoutSnapshot(t *testing.T) {
	api := isolated.NewAPI()
	t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	p := provider.NewFile(filepath.Join(t.TempDir(), "missing.json"), provider.WithInitTimeout(100*time.Millisecond))
	if err := api.SetProviderAndWait(context.Background(), p); err == nil {
		t.Fatal("init succeeded without a snapshot")
	}
	srv := httptest.NewServer(newHandler(api.NewClient()))
	t.Cleanup(srv.Close)
	if d := getData(t, srv.URL); d.Mode != "classic" {
		t.Fatalf("without a snapshot: %+v, want classic", d)
	}
}
