package daemon

import (
	"strings"
	"testing"
)

func TestFlagdSyncConfig(t *testing.T) {
	base := "flagSetId: x\nsources: [{name: env, type: env}]\noutputs: {file: {path: out.json}}\n"
	noEnv := func(string) (string, bool) { return "", false }
	for _, tc := range []struct {
		yaml, wantErr, wantListen string
	}{
		{"", "", ""},
		{"flagdSync: {enabled: true}\n", "", DefaultFlagdSyncListen},
		{"flagdSync: {enabled: true, listen: \"0.0.0.0:9015\"}\n", "", "0.0.0.0:9015"},
		{"flagdSync: {listen: \"127.0.0.1:8015\"}\n", "flagdSync: listen, unixSocket, tls or maxConnections is set but enabled is false", ""},
		{"flagdSync: {enabled: true, maxConnections: -1}\n", "flagdSync.maxConnections: must be positive", ""},
		{"flagdSync: {enabled: true, listen: \"8015\"}\n", `flagdSync.listen: "8015" is not host:port`, ""},
		{"flagdSync: {enabled: true, tls: {certFile: a.pem}}\n", "flagdSync.tls: certFile and keyFile are both required", ""},
		{"flagdSync: {enabled: true, tls: {certFile: /nonexistent/a.pem, keyFile: /nonexistent/a.key}}\n", "flagdSync.tls:", ""},
		{"flagdSync: {enabled: true, port: 8015}\n", "flagdSync", ""},
	} {
		c, err := ParseConfig([]byte(base+tc.yaml), noEnv)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.yaml, err)
			continue
		}
		if c.FlagdSync.Listen != tc.wantListen {
			t.Errorf("%q: listen %q, want %q", tc.yaml, c.FlagdSync.Listen, tc.wantListen)
		}
	}
}
