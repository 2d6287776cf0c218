package consul_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/sources"
	"github.com/flagsync/flagsync/sources/consul"
)

func TestDelete(t *testing.T) {
	c := testsvc.StartConsul(t)
	kv := kvClient(t, c)
	put := func(key, val string) uint64 {
		t.Helper()
		if _, err := kv.Put(&api.KVPair{Key: key, Value: []byte(val)}, nil); err != nil {
			t.Fatal(err)
		}
		p, _, err := kv.Get(key, nil)
		if err != nil || p == nil {
			t.Fatalf("get %s: %v", key, err)
		}
		return p.ModifyIndex
	}
	src, err := consul.New("kv", consul.Config{Address: c.Addr, Prefix: "flags/prod/"}, consul.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	idx := put("flags/prod/team/old", "true")
	other := put("flags/staging/old", "true")

	kvAt := func(key string, index uint64) sources.Origin {
		return sources.Origin{Scheme: "consul", Location: key, Version: index}
	}
	for _, tc := range []struct {
		flag   string
		origin sources.Origin
	}{
		{"old", kvAt("flags/staging/old", other)},                                                   // another prefix
		{"team/old", kvAt("flags/prod/team/new", idx)},                                              // another key
		{"team/old", kvAt("flags/prod/team/old", 0)},                                                // no index
		{"team/old", sources.Origin{Scheme: "ssm", Location: "/flags/prod/team/old", Version: idx}}, // another store
	} {
		if _, err := src.Delete(ctx, tc.flag, tc.origin); !errors.Is(err, sources.ErrNotDeletable) {
			t.Errorf("Delete(%s, %s) = %v, want ErrNotDeletable", tc.flag, tc.origin, err)
		}
	}
	if got, err := src.Get(ctx, "team/old", kvAt("flags/prod/team/old", idx)); err != nil || string(got) != "true" {
		t.Errorf("Get = %q, %v", got, err)
	}
	// A stale index (the key was written since) is refused; the key stays.
	newIdx := put("flags/prod/team/old", "false")
	if _, err := src.Delete(ctx, "team/old", kvAt("flags/prod/team/old", idx)); err == nil || !strings.Contains(err.Error(), "changed since the snapshot") {
		t.Errorf("stale delete: %v", err)
	}
	prev, err := src.Delete(ctx, "team/old", kvAt("flags/prod/team/old", newIdx))
	if err != nil || string(prev) != "false" {
		t.Fatalf("delete = %q, %v", prev, err)
	}
	if p, _, _ := kv.Get("flags/prod/team/old", nil); p != nil {
		t.Error("key still exists")
	}
	if p, _, _ := kv.Get("flags/staging/old", nil); p == nil {
		t.Error("the other prefix's key was deleted")
	}
	if _, err := src.Delete(ctx, "team/old", kvAt("flags/prod/team/old", newIdx)); err == nil {
		t.Error("deleting a missing key succeeded")
	}
}
