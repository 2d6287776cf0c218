package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/lifecycle"
	"github.com/flagsync/flagsync/sources"
)

// memStore is a deletable store keyed by the origin it gave each value: what the
// cleanup passes must be the very origin the source read.
type memStore struct {
	name    string
	values  map[sources.Origin][]byte
	failFor string
	deleted []string
}

func (m *memStore) Name() string { return m.name }

func (m *memStore) Fetch(context.Context) (*sources.Result, error) { return &sources.Result{}, nil }

func (m *memStore) Delete(_ context.Context, key string, origin sources.Origin) ([]byte, error) {
	if key == m.failFor {
		return nil, errors.New("access denied")
	}
	v, ok := m.values[origin]
	if !ok {
		return nil, errors.New("not found")
	}
	delete(m.values, origin)
	m.deleted = append(m.deleted, key)
	return v, nil
}

func (m *memStore) Get(_ context.Context, _ string, origin sources.Origin) ([]byte, error) {
	return m.values[origin], nil
}

func cleanupAuditLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("audit line not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// TestStoreCleanup: deletions go to the store whose contribution alone shaped the
// flag, with the origin it read; files, combined flags and stores without a deleter
// are skipped; one failure does not stop the rest.
func TestStoreCleanup(t *testing.T) {
	ssmOrigin := sources.Origin{Scheme: "ssm", Location: "/flags/prod/long_gone", Version: 4}
	// A Consul key with "@" in it: nothing parses the origin back.
	kvOrigin := sources.Origin{Scheme: "consul", Location: "flags/team@x/in_grace", Version: 12}
	envOrigin := sources.Origin{Scheme: "env", Location: "FLAGSYNC_FLAG_EXACTLY_AT"}
	fileOrigin := sources.Origin{Scheme: "file", Location: "flags.yaml"}
	prov := map[string]sources.Provenance{
		"long_gone":  {{Source: "params", Origin: ssmOrigin, Definition: true}},
		"in_grace":   {{Source: "kv", Origin: kvOrigin, Definition: true}},
		"file_gone":  {{Source: "git", Origin: fileOrigin, Definition: true}},
		"exactly_at": {{Source: "env", Origin: envOrigin}},
		"combined":   {{Source: "git", Origin: fileOrigin, Definition: true}, {Source: "params", Origin: ssmOrigin}},
	}
	var findings []lifecycle.Finding
	for _, k := range []string{"long_gone", "in_grace", "file_gone", "exactly_at", "combined"} {
		findings = append(findings, lifecycle.Finding{Flag: k, Status: lifecycle.StatusExpired, Owner: "team-" + k})
	}
	findings = append(findings, lifecycle.Finding{Flag: "not_yet", Status: lifecycle.StatusGrace})
	newStores := func() (*memStore, *memStore, map[string]sources.Source) {
		ssm := &memStore{name: "params", values: map[sources.Origin][]byte{ssmOrigin: []byte(`true`)}}
		kv := &memStore{name: "kv", values: map[sources.Origin][]byte{kvOrigin: []byte(`{"state":"ENABLED"}`)}}
		return ssm, kv, map[string]sources.Source{"params": ssm, "kv": kv, "git": ssm, "env": nil}
	}

	t.Run("dry run deletes nothing", func(t *testing.T) {
		ssm, kv, srcs := newStores()
		var buf bytes.Buffer
		acts, err := storeCleanup{sources: srcs, provenance: prov, dryRun: true, audit: slog.New(slog.NewJSONHandler(&buf, nil))}.run(context.Background(), findings)
		if err != nil {
			t.Fatal(err)
		}
		if len(ssm.deleted)+len(kv.deleted) != 0 {
			t.Fatalf("dry run deleted %v %v", ssm.deleted, kv.deleted)
		}
		lines := cleanupAuditLines(t, &buf)
		if len(lines) != 5 || len(acts) != 5 {
			t.Fatalf("want 5 audit lines and actions, got %d, %d: %s", len(lines), len(acts), buf.String())
		}
		for _, l := range lines {
			if l["flag"] == "long_gone" && (l["previous"] != "true" || l["dryRun"] != true || l["source"] != "ssm:/flags/prod/long_gone@4" || !strings.Contains(l["msg"].(string), "dry run")) {
				t.Errorf("dry run line for long_gone: %v", l)
			}
		}
	})

	t.Run("deletes only from stores, never files", func(t *testing.T) {
		ssm, kv, srcs := newStores()
		var buf bytes.Buffer
		acts, err := storeCleanup{sources: srcs, provenance: prov, audit: slog.New(slog.NewJSONHandler(&buf, nil))}.run(context.Background(), findings)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ssm.deleted, []string{"long_gone"}) || !reflect.DeepEqual(kv.deleted, []string{"in_grace"}) {
			t.Fatalf("deleted ssm=%v consul=%v", ssm.deleted, kv.deleted)
		}
		byFlag := map[string]lifecycle.Action{}
		for _, a := range acts {
			byFlag[a.Flag] = a
		}
		for flag, want := range map[string]string{"file_gone": "file", "exactly_at": "no deleter", "combined": "several sources"} {
			if !strings.Contains(byFlag[flag].Skipped, want) {
				t.Errorf("%s: skipped %q, want it to say %q", flag, byFlag[flag].Skipped, want)
			}
		}
		if string(byFlag["in_grace"].Previous) != `{"state":"ENABLED"}` {
			t.Errorf("previous value not returned: %q", byFlag["in_grace"].Previous)
		}
		for _, l := range cleanupAuditLines(t, &buf) {
			if l["who"] == "" || l["time"] == nil || l["flag"] == nil {
				t.Errorf("audit line lacks who/what/when: %v", l)
			}
			if l["flag"] == "long_gone" && (l["msg"] != "flag deleted from source" || l["previous"] != "true" || l["owner"] != "team-long_gone") {
				t.Errorf("deletion line: %v", l)
			}
		}
	})

	t.Run("one failure does not stop the rest", func(t *testing.T) {
		ssm, kv, srcs := newStores()
		ssm.failFor = "long_gone"
		acts, err := storeCleanup{sources: srcs, provenance: prov}.run(context.Background(), findings)
		if err == nil || !strings.Contains(err.Error(), "long_gone") || !strings.Contains(err.Error(), "access denied") {
			t.Fatalf("want error naming the flag, got %v", err)
		}
		if len(kv.deleted) != 1 || len(acts) != 5 {
			t.Errorf("consul deletions %v, actions %d", kv.deleted, len(acts))
		}
	})
}
