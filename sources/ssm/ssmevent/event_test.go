package ssmevent

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, op := range []string{"Create", "Update", "Delete", "LabelParameterVersion"} {
		ev, err := Parse([]byte(Body("/flags/prod/team/x", op)))
		if err != nil || ev.Name != "/flags/prod/team/x" || ev.Operation != op {
			t.Fatalf("%s: %+v, %v", op, ev, err)
		}
		if ev.ChangesValue() != (op != "LabelParameterVersion") {
			t.Fatalf("%s: ChangesValue = %v", op, ev.ChangesValue())
		}
	}
	inner, _ := json.Marshal(Body("/flags/prod/via-sns", "Delete"))
	sns := `{"Type":"Notification","MessageId":"1","TopicArn":"arn:aws:sns:us-east-1:123456789012:flag-changes","Message":` + string(inner) + `}`
	if ev, err := Parse([]byte(sns)); err != nil || ev.Name != "/flags/prod/via-sns" || ev.Operation != "Delete" {
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
		if _, err := Parse([]byte(tc.body)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.body, err, tc.want)
		}
	}
	if _, err := Parse([]byte(Body("/"+strings.Repeat("a", MaxNameLength), "Update"))); err == nil {
		t.Error("a name past the maximum length was accepted")
	}
}

// FuzzParse: any body either fails or yields a name that is safe to pass
// to GetParameters.
func FuzzParse(f *testing.F) {
	f.Add([]byte(Body("/flags/prod/x", "Update")))
	f.Add([]byte(`{"source":"aws.ssm","detail-type":"Parameter Store Change","detail":{"name":"/a\u00e9","operation":"Update"}}`))
	f.Add([]byte(`{"detail":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := Parse(body)
		if err != nil {
			return
		}
		if ValidName(ev.Name) != nil || ev.Operation == "" {
			t.Fatalf("accepted %+v", ev)
		}
	})
}
