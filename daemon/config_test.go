package daemon

import (
	"strings"
	"testing"
	"time"
)

func lookupFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const minimal = `
flagSetId: prod
sources:
  - {name: git, type: file, path: flags.yaml}
outputs:
  file: {path: out.json}
`

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(minimal), lookupFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Schedule != DefaultSchedule || c.WatchDebounce != DefaultWatchDebounce || c.HTTP.Listen != DefaultListen ||
		c.Guards.RemovedFraction() != 0.5 || c.Guards.AllowEmpty || c.Log.Level != "info" || c.Log.Format != "text" {
		t.Errorf("defaults: %+v", c)
	}
	if c.Outputs.File.FileMode() != 0o644 || c.Sources[0].Timeout != DefaultSourceTimeout {
		t.Errorf("file mode %v timeout %v", c.Outputs.File.FileMode(), c.Sources[0].Timeout)
	}
}

func TestParseConfigFull(t *testing.T) {
	c, err := ParseConfig([]byte(`
flagSetId: prod
sources:
  - name: git
    type: file
    path: ${FLAGS_DIR:-flags}/
    timeout: 2s
  - {name: ops, type: env, prefix: OPS_}
schedule: "*/15 * * * * *"
watchDebounce: 50ms
outputs:
  file: {path: out.json, mode: "0600"}
  redis: {url: "rediss://:${REDIS_PASSWORD}@cache:6380/2"}
http: {listen: "127.0.0.1:${PORT}"}
guards: {maxRemovedFraction: 0.25, allowEmpty: true}
log: {level: DEBUG, format: json}
`), lookupFrom(map[string]string{"REDIS_PASSWORD": "s3cret", "PORT": "9090"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sources[0].Timeout != 2*time.Second || c.WatchDebounce != 50*time.Millisecond || c.Outputs.File.FileMode() != 0o600 {
		t.Errorf("%+v", c)
	}
	if c.Outputs.Redis.URL != "rediss://:s3cret@cache:6380/2" || c.Outputs.Redis.Prefix != "flagsync:prod" {
		t.Errorf("redis %+v", c.Outputs.Redis)
	}
	if c.HTTP.Listen != "127.0.0.1:9090" || c.Guards.RemovedFraction() != 0.25 || !c.Guards.AllowEmpty || c.Log.Level != "debug" {
		t.Errorf("%+v", c)
	}
	if got := RedactedRedisURL(c.Outputs.Redis.URL); strings.Contains(got, "s3cret") {
		t.Errorf("redacted url %q shows the password", got)
	}
	var fc struct {
		Path string `yaml:"path"`
	}
	if err := DecodeSourceConfig(c.Sources[0].Node, &fc); err != nil || fc.Path != "flags/" {
		t.Errorf("source path %q err %v", fc.Path, err)
	}
}

func TestParseConfigErrorsNameTheKey(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{`sources: []`, "flagSetId: required"},
		{"flagSetId: x\noutputs: {file: {path: o}}", "sources: at least one source"},
		{"flagSetId: x\nsources:\n  - {name: a, type: file, path: p}\n  - {name: b, type: file}\noutputs: {file: {path: o}}", "sources[1].path: required"},
		{"flagSetId: x\nsources: [{name: a, type: nope}]\noutputs: {file: {path: o}}", `sources[0].type: unknown source type "nope"`},
		{"flagSetId: x\nsources: [{type: file, path: p}]\noutputs: {file: {path: o}}", "sources[0].name: required"},
		{"flagSetId: x\nsources: [{name: a, type: file, path: p}, {name: a, type: env}]\noutputs: {file: {path: o}}", "sources[1].name:"},
		{"flagSetId: x\nsources: [{name: a, type: file, path: p, colour: red}]\noutputs: {file: {path: o}}", "sources[0].colour: unknown key"},
		{"flagSetId: x\nsources: [{name: a, type: file, path: p, timeout: soon}]\noutputs: {file: {path: o}}", "sources[0].timeout:"},
		{minimal + "schedule: every now and then\n", "schedule:"},
		{minimal + "watchDebounce: 10\n", "watchDebounce:"},
		{minimal + "guards: {maxRemovedFraction: 2}\n", "guards.maxRemovedFraction: must be between 0 and 1"},
		{minimal + "guards: {maxRemovedFraction: lots}\n", "guards.maxRemovedFraction:"},
		{minimal + "log: {level: loud}\n", "log.level:"},
		{minimal + "log: {format: xml}\n", "log.format:"},
		{minimal + "http: {listen: nowhere}\n", "http.listen:"},
		{minimal + "surprise: 1\n", "surprise: unknown key"},
		{"flagSetId: x\nsources: [{name: a, type: file, path: p}]\noutputs: {}", "outputs: at least one"},
		{"flagSetId: x\nsources: [{name: a, type: file, path: p}]\noutputs: {file: {path: o, mode: rwx}}", "outputs.file.mode:"},
		{"flagSetId: x\nsources: [{name: a, type: file, path: p}]\noutputs: {file: {}}", "outputs.file.path: required"},
		{"flagSetId: x\nsources: [{name: a, type: file, path: p}]\noutputs: {redis: {url: 'http://:pw@h'}}", "outputs.redis.url: must be"},
		{"flagSetId: x\nsources: [{name: a, type: file, path: p}]\noutputs: {redis: {url: 'redis://:pw@h:6379/abc'}}", "outputs.redis.url:"},
		{"flagSetId: x\nsources: [{name: a, type: file, path: p}]\noutputs: {redis: {url: 'redis://:pw@h:bad/0'}}", "outputs.redis.url: must be"},
		{"flagSetId: x\nsources: [{name: a, type: file, path: p}]\noutputs: {file: {path: '${OUT}'}}", "outputs.file.path: environment variable OUT is not set"},
		{"flagSetId: [x", "invalid YAML"},
	}
	for _, c := range cases {
		// Source keys are checked by the source type when the daemon is built.
		cfg, err := ParseConfig([]byte(c.yaml), lookupFrom(nil))
		if err == nil {
			var d *Daemon
			if d, err = New(cfg, Options{}); err == nil {
				d.Close()
			}
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %q:\n  err = %v\n  want containing %q", c.yaml, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), ":pw@") {
			t.Errorf("error leaks the redis password: %v", err)
		}
	}
}
