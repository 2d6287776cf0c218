package testsvc

import (
	"net/http"
	"strings"
	"testing"
)

func TestMotoAnswersSSM(t *testing.T) {
	m := StartMoto(t)
	req, _ := http.NewRequest(http.MethodPost, m.URL+"/", strings.NewReader(`{"Name":"/x"}`))
	req.Header.Set("X-Amz-Target", "AmazonSSM.GetParameter")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// An unknown parameter is a 400 ParameterNotFound: moto speaks the SSM protocol.
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("GetParameter of a missing parameter: HTTP %d, want 400", resp.StatusCode)
	}
}
