package ssm

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/flagsync/flagsync/flagset"
	"github.com/flagsync/flagsync/internal/testsvc"
	"github.com/flagsync/flagsync/sources"
)

// motoClient is a plain SDK client for seeding moto.
func motoClient(t testing.TB, m *testsvc.Moto) *ssm.Client {
	t.Helper()
	return ssm.New(ssm.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(m.URL),
		Credentials:  staticCreds{},
	})
}

type staticCreds struct{}

func (staticCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing", Source: "test"}, nil
}

func put(t testing.TB, c *ssm.Client, name, value string, typ types.ParameterType) {
	t.Helper()
	_, err := c.PutParameter(context.Background(), &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(value), Type: typ, Overwrite: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("put %s: %v", name, err)
	}
}

// seed1000 stores exactly 1,000 parameters under /flags/prod/ (plus decoys next to
// it) and returns the names of the bare boolean ones.
func seed1000(t testing.TB, c *ssm.Client) {
	t.Helper()
	special := map[string]struct {
		value string
		typ   types.ParameterType
	}{
		"/flags/prod/team/checkout/new_button": {`{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off","metadata":{"source":"file:old.yaml"}}`, types.ParameterTypeString},
		"/flags/prod/team/color":               {"state: ENABLED\nvariants:\n  red: red\n  blue: blue\ndefaultVariant: blue\n", types.ParameterTypeString},
		"/flags/prod/secret_rollout":           {`{"state":"DISABLED"}`, types.ParameterTypeSecureString},
		"/flags/prod/broken":                   {`{"variants": {"on": true,`, types.ParameterTypeString},
		"/flags/prod/broken_secret":            {`{"variants": {"hunter2-secret": tru`, types.ParameterTypeSecureString},
	}
	var names []string
	for name := range special {
		names = append(names, name)
	}
	for i := 0; len(names) < 1000; i++ {
		names = append(names, fmt.Sprintf("/flags/prod/f%04d", i))
	}
	// Decoys: a sibling hierarchy sharing the prefix and a different environment.
	names = append(names, "/flags/production/decoy", "/flags/staging/f0000")

	var wg sync.WaitGroup
	work := make(chan string)
	for range 8 {
		wg.Go(func() {
			for name := range work {
				if sp, ok := special[name]; ok {
					put(t, c, name, sp.value, sp.typ)
				} else {
					put(t, c, name, "true", types.ParameterTypeString)
				}
			}
		})
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
}

func newMotoSource(t testing.TB, m *testsvc.Moto, cfg Config) *Source {
	t.Helper()
	return newTestSource(t, m.URL, cfg, Options{})
}

func newTestSource(t testing.TB, endpoint string, cfg Config, opts Options) *Source {
	t.Helper()
	testsvc.IsolateAWS(t, "us-east-1")
	cfg.Endpoint = endpoint
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 1000 // test servers have no quota; the limiter has its own test
	}
	s, err := New(context.Background(), "ssm-test", cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestMotoFullThenIncremental(t *testing.T) {
	m := testsvc.StartMoto(t)
	c := motoClient(t, m)
	seed1000(t, c)
	var calls sync.Map
	src := newMotoSource(t, m, Config{Path: "/flags/prod"})
	src.onCall = func(op string) {
		v, _ := calls.LoadOrStore(op, new(int))
		*v.(*int)++
	}
	ctx := context.Background()

	res, err := src.Fetch(ctx)
	if err != nil {
		t.Fatalf("full fetch: %v", err)
	}
	st := src.LastStats()
	if !st.Full || st.Parameters != 1000 {
		t.Fatalf("full sync stats = %+v, want full with 1000 parameters", st)
	}
	// 1,000 parameters at 10 per page; moto may add one final empty page with no token.
	if n := st.Calls[OpGetParametersByPath]; n < 100 || n > 101 {
		t.Fatalf("GetParametersByPath calls = %d, want 100", n)
	}
	if n := len(res.Definitions) + len(res.Overlays) + len(res.Problems); n != 1000 {
		t.Fatalf("definitions+overlays+problems = %d, want 1000", n)
	}
	if len(res.Problems) != 2 {
		t.Fatalf("problems = %v, want broken and broken_secret", res.Problems)
	}
	for _, p := range res.Problems {
		if !strings.Contains(p.Path, "flags."+p.Flag) || !strings.Contains(p.Message, "ssm:/flags/prod/"+p.Flag+"@1") {
			t.Errorf("problem %q does not name the flag and parameter", p.Error())
		}
		if strings.Contains(p.Error(), "hunter2") {
			t.Errorf("problem leaks SecureString content: %q", p.Error())
		}
	}
	def := res.Definitions["team/checkout/new_button"]
	if def == nil || def.Metadata[flagset.MetaSource] != "ssm:/flags/prod/team/checkout/new_button@1" {
		t.Fatalf("nested JSON definition = %+v", def)
	}
	if o := res.Origins["team/checkout/new_button"]; o != (sources.Origin{Scheme: "ssm", Location: "/flags/prod/team/checkout/new_button", Version: 1}) {
		t.Fatalf("nested JSON definition origin = %+v", o)
	}
	if def := res.Definitions["team/color"]; def == nil || *def.DefaultVariant != "blue" {
		t.Fatalf("nested YAML definition = %+v", def)
	}
	if ov := res.Overlays["secret_rollout"]; ov.State == nil || *ov.State != flagset.Disabled || ov.Origin.String() != "ssm:/flags/prod/secret_rollout@1" {
		t.Fatalf("decrypted SecureString patch = %+v", ov)
	}
	if ov := res.Overlays["f0000"]; !ov.HasValue || ov.Value != true {
		t.Fatalf("bare value = %+v", ov)
	}
	if _, ok := res.Overlays["decoy"]; ok {
		t.Fatal("a parameter of /flags/production/ leaked into /flags/prod/")
	}

	// No change: the incremental sync only lists. AWS serves up to 50 per page (20
	// calls, see TestAPICallsAtAWSPageSizes); moto ignores MaxResults and serves 10,
	// and a full last page is followed by an empty one: n/10 + 1 calls here.
	motoListingCalls := func(n int) int { return n/10 + 1 }
	if _, err := src.Fetch(ctx); err != nil {
		t.Fatalf("incremental fetch: %v", err)
	}
	st = src.LastStats()
	if st.Full || st.Calls[OpDescribeParameters] != motoListingCalls(1000) || st.Calls[OpGetParameters] != 0 || st.Calls[OpGetParametersByPath] != 0 {
		t.Fatalf("no-change incremental stats = %+v, want %d DescribeParameters only", st, motoListingCalls(1000))
	}

	// Change 3, delete 1: the same listing, one GetParameters for the 3 names.
	put(t, c, "/flags/prod/f0001", "false", types.ParameterTypeString)
	put(t, c, "/flags/prod/f0002", "false", types.ParameterTypeString)
	put(t, c, "/flags/prod/team/color", `{"defaultVariant":"red"}`, types.ParameterTypeString)
	if _, err := c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/flags/prod/f0003")}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	res, err = src.Fetch(ctx)
	if err != nil {
		t.Fatalf("incremental fetch after changes: %v", err)
	}
	st = src.LastStats()
	if st.Full || st.Changed != 3 || st.Deleted != 1 || st.Parameters != 999 ||
		st.Calls[OpDescribeParameters] != motoListingCalls(999) || st.Calls[OpGetParameters] != 1 {
		t.Fatalf("incremental stats = %+v, want 3 changed, 1 deleted, %d DescribeParameters + 1 GetParameters", st, motoListingCalls(999))
	}
	if ov := res.Overlays["f0001"]; ov.Value != false || ov.Origin.String() != "ssm:/flags/prod/f0001@2" {
		t.Fatalf("changed f0001 = %+v", ov)
	}
	if _, ok := res.Overlays["f0003"]; ok {
		t.Fatal("deleted f0003 still present")
	}
	if _, ok := res.Definitions["team/color"]; ok {
		t.Fatal("team/color is still a definition after becoming a patch")
	}
	if ov := res.Overlays["team/color"]; ov.DefaultVariant == nil || *ov.DefaultVariant != "red" {
		t.Fatalf("team/color patch = %+v", ov)
	}
	if ov := res.Overlays["f0004"]; ov.Value != true {
		t.Fatalf("unchanged f0004 lost its cached value: %+v", ov)
	}
	if v, _ := calls.Load(OpDescribeParameters); v == nil || *v.(*int) != motoListingCalls(1000)+motoListingCalls(999) {
		t.Fatalf("OnAPICall saw DescribeParameters %v times, want %d", *v.(*int), motoListingCalls(1000)+motoListingCalls(999))
	}
}

func TestMotoFullSyncEveryOneLevelNoDecrypt(t *testing.T) {
	m := testsvc.StartMoto(t)
	c := motoClient(t, m)
	put(t, c, "/app/flags/a", "true", types.ParameterTypeString)
	put(t, c, "/app/flags/nested/b", "on", types.ParameterTypeString)
	put(t, c, "/app/flags/sealed", "true", types.ParameterTypeSecureString)
	src := newMotoSource(t, m, Config{Path: "/app/flags/", Recursive: aws.Bool(false), Decrypt: aws.Bool(false), FullSyncEvery: 3})
	ctx := context.Background()
	var fulls []bool
	for range 7 {
		res, err := src.Fetch(ctx)
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		if len(res.Overlays) != 1 || res.Overlays["a"].Value != true {
			t.Fatalf("one-level result = %+v, want only a", res.Overlays)
		}
		// A SecureString read without decryption is ciphertext: a problem, not a value.
		if len(res.Problems) != 1 || res.Problems[0].Flag != "sealed" || !strings.Contains(res.Problems[0].Message, "decrypt: false") {
			t.Fatalf("problems = %v, want one for sealed", res.Problems)
		}
		fulls = append(fulls, src.LastStats().Full)
	}
	if want := []bool{true, false, false, true, false, false, true}; fmt.Sprint(fulls) != fmt.Sprint(want) {
		t.Fatalf("full syncs = %v, want %v", fulls, want)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "path: required"},
		{Config{Path: "flags/prod"}, "must start with /"},
		{Config{Path: "/f/", FullSyncEvery: -1}, "fullSyncEvery"},
		{Config{Path: "/f/", RateLimit: -2}, "rateLimit"},
		{Config{Path: "/f/", ChangeQueueURL: "flagsync-changes"}, "changeQueueUrl: \"flagsync-changes\" is not an http(s) URL"},
		{Config{Path: "/f/", ChangeQueueURL: "arn:aws:sqs:eu-west-1:123456789012:q"}, "changeQueueUrl"},
		{Config{Path: "/f/", ChangeQueueEndpoint: "http://127.0.0.1:1"}, "changeQueueEndpoint: set without changeQueueUrl"},
	} {
		if _, err := tc.cfg.withDefaults(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	cfg, err := Config{Path: "/f"}.withDefaults()
	if err != nil || cfg.Path != "/f/" || !*cfg.Recursive || !*cfg.Decrypt || cfg.FullSyncEvery != 10 || cfg.RateLimit != 20 {
		t.Fatalf("defaults = %+v, %v", cfg, err)
	}
}
