package ssm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/sources"
)

func TestMotoDelete(t *testing.T) {
	m := testsvc.StartMoto(t)
	testsvc.IsolateAWS(t, "us-east-1")
	c := motoClient(t, m)
	put(t, c, "/flags/prod/team/old", "true", types.ParameterTypeString)
	put(t, c, "/flags/prod/secret", "s3cr3t-value", types.ParameterTypeSecureString)
	put(t, c, "/flags/staging/old", "true", types.ParameterTypeString)
	var calls []string
	src := newTestSource(t, m.URL, Config{Path: "/flags/prod/"}, Options{OnAPICall: func(op string) { calls = append(calls, op) }})
	ctx := context.Background()
	exists := func(name string) bool {
		_, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
		return err == nil
	}
	ssmAt := func(name string, version uint64) sources.Origin {
		return sources.Origin{Scheme: "ssm", Location: name, Version: version}
	}
	for _, tc := range []struct {
		flag   string
		origin sources.Origin
	}{
		{"old", ssmAt("/flags/staging/old", 1)},                                                     // another path
		{"team/old", ssmAt("/flags/prod/team/new", 1)},                                              // another parameter
		{"team/old", ssmAt("/flags/prod/team/old", 0)},                                              // no version
		{"team/old", sources.Origin{Scheme: "consul", Location: "flags/prod/team/old", Version: 1}}, // another store
	} {
		if _, err := src.Delete(ctx, tc.flag, tc.origin); !errors.Is(err, sources.ErrNotDeletable) {
			t.Errorf("Delete(%s, %s) = %v, want ErrNotDeletable", tc.flag, tc.origin, err)
		}
	}
	if got, err := src.Get(ctx, "secret", ssmAt("/flags/prod/secret", 1)); err != nil || string(got) != "<redacted SecureString>" {
		t.Errorf("Get(secret) = %q, %v", got, err)
	}
	put(t, c, "/flags/prod/team/old", "false", types.ParameterTypeString) // now version 2
	if _, err := src.Delete(ctx, "team/old", ssmAt("/flags/prod/team/old", 1)); err == nil || !strings.Contains(err.Error(), "changed since the snapshot") {
		t.Errorf("stale delete: %v", err)
	}
	if !exists("/flags/prod/team/old") {
		t.Fatal("a changed parameter was deleted")
	}
	prev, err := src.Delete(ctx, "team/old", ssmAt("/flags/prod/team/old", 2))
	if err != nil || string(prev) != "false" {
		t.Fatalf("delete = %q, %v", prev, err)
	}
	prev, err = src.Delete(ctx, "secret", ssmAt("/flags/prod/secret", 1))
	if err != nil || string(prev) != "<redacted SecureString>" {
		t.Fatalf("delete secret = %q, %v", prev, err)
	}
	if exists("/flags/prod/team/old") || exists("/flags/prod/secret") || !exists("/flags/staging/old") {
		t.Error("wrong parameters deleted")
	}
	if !strings.Contains(strings.Join(calls, ","), OpDeleteParameter) || !strings.Contains(strings.Join(calls, ","), OpGetParameter) {
		t.Errorf("API calls not reported: %v", calls)
	}
}
