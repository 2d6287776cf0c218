package ssm

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// callAPI runs one API operation call and makes its error short and clear (see
// apiCallError). It remembers the AWS error of each failed attempt, so a call whose
// retries are cut short by the context (the SDK then reports only "request canceled,
// context deadline exceeded") still says what the store answered, e.g.
// ThrottlingException.
func callAPI[T any](ctx context.Context, s *Source, op string, call func(context.Context) (T, error)) (T, error) {
	attempts := &attemptLog{}
	out, err := call(context.WithValue(ctx, attemptLogKey{}, attempts))
	if err != nil {
		last, failed := attempts.get()
		return out, &apiCallError{path: s.cfg.Path, op: op, err: err, lastAttempt: last, failedAttempts: failed}
	}
	return out, nil
}

// attemptLog is the per-call record filled by recordAttemptErrors.
type attemptLog struct {
	mu     sync.Mutex
	last   error // the last attempt error that carried an AWS error code
	failed int   // attempts that failed with an AWS error code
}

type attemptLogKey struct{}

func (l *attemptLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = err
	l.failed++
}

func (l *attemptLog) get() (error, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last, l.failed
}

// recordAttemptErrors is an API option adding a middleware inside the SDK's retry
// loop (right after the Retry step), where it sees the error of every attempt.
func recordAttemptErrors(stack *middleware.Stack) error {
	return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("flagsyncRecordAttemptErrors",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleFinalize(ctx, in)
			var apiErr smithy.APIError
			if err != nil && errors.As(err, &apiErr) {
				if l, ok := ctx.Value(attemptLogKey{}).(*attemptLog); ok {
					l.add(err)
				}
			}
			return out, md, err
		}), "Retry", middleware.After)
}

// apiCallError is an SDK error made short and clear: "ssm /flags/prod/:
// AccessDeniedException: <message> (GetParametersByPath)". It wraps the SDK error
// (and the last attempt's AWS error) for errors.Is and errors.As.
type apiCallError struct {
	path, op string
	err      error
	// lastAttempt is the AWS error of the last failed attempt, if any; it names the
	// cause when err is only the context ending the retries.
	lastAttempt    error
	failedAttempts int
}

func (e *apiCallError) Error() string {
	detail := e.op
	var maxErr *retry.MaxAttemptsError
	cause := e.err
	switch {
	case errors.As(e.err, &maxErr):
		detail = fmt.Sprintf("%s, gave up after %d attempts", e.op, maxErr.Attempt)
	case e.lastAttempt != nil && (errors.Is(e.err, context.DeadlineExceeded) || errors.Is(e.err, context.Canceled)):
		// The retries were cut short: the context error alone would hide that the
		// store was, say, throttling.
		ctxErr := context.DeadlineExceeded
		if !errors.Is(e.err, ctxErr) {
			ctxErr = context.Canceled
		}
		attempts := "1 attempt"
		if e.failedAttempts > 1 {
			attempts = fmt.Sprintf("%d attempts", e.failedAttempts)
		}
		detail = fmt.Sprintf("%s, %v while retrying after %s", e.op, ctxErr, attempts)
		cause = e.lastAttempt
	}
	// A failed AssumeRole surfaces as the SSM call's error; name the role so an STS
	// AccessDenied is not mistaken for a missing SSM permission.
	what := ""
	var roleErr *assumeRoleError
	if errors.As(cause, &roleErr) {
		what = "assuming role " + roleErr.role + ": "
	}
	var apiErr smithy.APIError
	if errors.As(cause, &apiErr) {
		return fmt.Sprintf("ssm %s: %s%s: %s (%s)", e.path, what, apiErr.ErrorCode(), apiErr.ErrorMessage(), detail)
	}
	// Network failures: the HTTP error says it all without the SDK's wrapping layers.
	var urlErr *url.Error
	if errors.As(cause, &urlErr) {
		return fmt.Sprintf("ssm %s: %s%s: %v", e.path, what, detail, urlErr)
	}
	if roleErr != nil {
		return fmt.Sprintf("ssm %s: %s%v (%s)", e.path, what, roleErr.err, detail)
	}
	return fmt.Sprintf("ssm %s: %s: %v", e.path, detail, e.err)
}

func (e *apiCallError) Unwrap() []error {
	if e.lastAttempt != nil {
		return []error{e.err, e.lastAttempt}
	}
	return []error{e.err}
}

// assumeRoleProvider marks errors of the STS credentials provider so apiCallError
// can say the role could not be assumed.
type assumeRoleProvider struct {
	role string
	next aws.CredentialsProvider
}

func (p assumeRoleProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := p.next.Retrieve(ctx)
	if err != nil {
		return creds, &assumeRoleError{role: p.role, err: err}
	}
	return creds, nil
}

// ProviderSources passes on what the SDK reports about where credentials come from.
func (p assumeRoleProvider) ProviderSources() []aws.CredentialSource {
	if src, ok := p.next.(aws.CredentialProviderSource); ok {
		return src.ProviderSources()
	}
	return nil
}

type assumeRoleError struct {
	role string
	err  error
}

func (e *assumeRoleError) Error() string { return "assuming role " + e.role + ": " + e.err.Error() }

func (e *assumeRoleError) Unwrap() error { return e.err }
