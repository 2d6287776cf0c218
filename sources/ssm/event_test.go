package ssm

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseChangeEvent(t *testing.T) {
	for _, op := range []string{"Create", "Update", "Delete", "LabelParameterVersion"} {
		ev, err := parseChangeEvent([]byte(ChangeEventBody("/flags/prod/team/x", op)))
		if err != nil || ev.Name != "/flags/prod/team/x" || ev.Operation != op {
			t.Fatalf("%s: %+v, %v", op, ev, err)
		}
		if ev.changesValue() != (op != "LabelParameterVersion") {
			t.Fatalf("%s: changesValue = %v", op, ev.changesValue())
		}
	}
	inner, _ := json.Marshal(ChangeEventBody("/flags/prod/via-sns", "Delete"))
	sns := `{"Type":"Notification","MessageId":"1","TopicArn":"arn:aws:sns:us-east-1:123456789012:flag-changes","Message":` + string(inner) + `}`
	if ev, err := parseChangeEvent([]byte(sns)); err != nil || ev.Name != "/flags/prod/via-sns" || ev.Operation != "Delete" {
		t.Fatalf("event in an SNS notification: %+v, %v", ev, err)
	}
	for _, tc := range []struct{ body, want string }{
		{`hello`, "not a JSON object"},
		{`[1]`, "not a JSON object"},
		{`{"Type":"Notification","Message":"hello"}`, "not a JSON object"},
		{`{"source":"aws.ec2","detail-type":"Parameter Store Change","detail":{"name":"/a","operation":"Update"}}`, `source "aws.ec2"`},
		{`{"source":"aws.ssm","detail-type":"Parameter Store Policy Action","detail":{"name":"/a"}}`, "not a Parameter Store Change event"},
		{`{"source":"aws.ssm","detail-type":"Parameter Store Change"}`, "detail: missing"},
		{`{"source":"aws.ssm","detail-type":"Parameter Store Change","detail":{"operation":"Update"}}`, "detail.name: missing"},
		{`{"source":"aws.ssm","detail-type":"Parameter Store Change","detail":{"name":"/a b","operation":"Update"}}`, `character ' '`},
		{`{"source":"aws.ssm","detail-type":"Parameter Store Change","detail":{"name":"/a"}}`, "detail.operation: missing"},
	} {
		if _, err := parseChangeEvent([]byte(tc.body)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.body, err, tc.want)
		}
	}
	if _, err := parseChangeEvent([]byte(ChangeEventBody("/"+strings.Repeat("a", maxParameterName), "Update"))); err == nil {
		t.Error("a name past the maximum length was accepted")
	}
}

// FuzzParseChangeEvent: any body either fails or yields a name that is safe to pass
// to GetParameters.
func FuzzParseChangeEvent(f *testing.F) {
	f.Add([]byte(ChangeEventBody("/flags/prod/x", "Update")))
	f.Add([]byte(`{"source":"aws.ssm","detail-type":"Parameter Store Change","detail":{"name":"/a\u00e9","operation":"Update"}}`))
	f.Add([]byte(`{"detail":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := parseChangeEvent(body)
		if err != nil {
			return
		}
		if validParameterName(ev.Name) != nil || ev.Operation == "" {
			t.Fatalf("accepted %+v", ev)
		}
	})
}
