package ssm

import (
	"context"
	"fmt"
	"math"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/flagsync/flagsync/sources"
)

// Operation names of the lifecycle calls (Options.OnAPICall).
const (
	OpGetParameter    = "GetParameter"
	OpDeleteParameter = "DeleteParameter"
)

// redactedSecure replaces a SecureString value in audit logs.
const redactedSecure = "<redacted SecureString>"

// Delete removes the parameter a flag came from (lifecycle deleteFromSource) and
// returns its previous value for the audit log ("<redacted SecureString>" for a
// SecureString). origin is where the flag was read (parameter name and version): the
// name must be this source's parameter for flagKey, and it is deleted only if its
// version is still the one the snapshot was built from. Parameter Store has no
// conditional delete, so a write between the version check and the delete (a few
// milliseconds) is not caught.
func (s *Source) Delete(ctx context.Context, flagKey string, origin sources.Origin) ([]byte, error) {
	name, version, err := s.originName(flagKey, origin)
	if err != nil {
		return nil, err
	}
	p, err := s.getParameter(ctx, name)
	if err != nil {
		return nil, err
	}
	if p.Version != version {
		return nil, fmt.Errorf("ssm %s: changed since the snapshot (version %d, snapshot had %d): not deleted", name, p.Version, version)
	}
	s.count(OpDeleteParameter)
	_, err = callAPI(ctx, s, OpDeleteParameter, func(ctx context.Context) (*ssm.DeleteParameterOutput, error) {
		return s.client.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(name)})
	})
	if err != nil {
		return nil, err
	}
	return previousValue(p), nil
}

// Get returns the current value of the parameter a flag came from, for dry-run logs
// ("<redacted SecureString>" for a SecureString).
func (s *Source) Get(ctx context.Context, flagKey string, origin sources.Origin) ([]byte, error) {
	name, _, err := s.originName(flagKey, origin)
	if err != nil {
		return nil, err
	}
	p, err := s.getParameter(ctx, name)
	if err != nil {
		return nil, err
	}
	return previousValue(p), nil
}

func previousValue(p *types.Parameter) []byte {
	if p.Type == types.ParameterTypeSecureString {
		return []byte(redactedSecure)
	}
	return []byte(aws.ToString(p.Value))
}

// getParameter reads a parameter without decryption: the value is only logged, and
// never for a SecureString.
func (s *Source) getParameter(ctx context.Context, name string) (*types.Parameter, error) {
	s.count(OpGetParameter)
	out, err := callAPI(ctx, s, OpGetParameter, func(ctx context.Context) (*ssm.GetParameterOutput, error) {
		return s.client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(false)})
	})
	if err != nil {
		return nil, err
	}
	if out.Parameter == nil {
		return nil, fmt.Errorf("ssm %s: no longer exists", name)
	}
	return out.Parameter, nil
}

// originName checks that origin names this source's parameter for flagKey and
// returns the name and the version it was read at.
func (s *Source) originName(flagKey string, o sources.Origin) (string, int64, error) {
	if o.Scheme != "ssm" {
		return "", 0, fmt.Errorf("%w: %s is not an ssm origin", sources.ErrNotDeletable, o)
	}
	if key, err := sources.RelativeKey(s.cfg.Path, o.Location); err != nil || key != flagKey {
		return "", 0, fmt.Errorf("%w: %s is not the parameter of flag %s under %s", sources.ErrNotDeletable, o, flagKey, s.cfg.Path)
	}
	if o.Version == 0 || o.Version > math.MaxInt64 {
		return "", 0, fmt.Errorf("%w: %s has no parameter version to check against", sources.ErrNotDeletable, o)
	}
	return o.Location, int64(o.Version), nil
}

func (s *Source) count(op string) {
	if s.onCall != nil {
		s.onCall(op)
	}
}

var (
	_ sources.Deleter = (*Source)(nil)
	_ sources.Getter  = (*Source)(nil)
)
