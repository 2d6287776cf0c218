// Package apitoken reads API tokens: token files, and the credential a request
// presents. A token is held only as its digest, and no error quotes a token. It
// imports only the standard library, so its parsers are fuzzed on their own.
package apitoken

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// MinLength is the shortest token accepted: tokens are compared, not rate
// limited, so they must be long enough not to be guessed.
const MinLength = 16

// Digest is a token's SHA-256: tokens are compared as digests, so comparing takes
// the same time whatever the lengths and contents.
type Digest [sha256.Size]byte

// Sum is token's digest.
func Sum(token string) Digest { return sha256.Sum256([]byte(token)) }

// ParseFile reads one token per line (blank lines and # comments ignored); an
// error never quotes the content.
func ParseFile(b []byte) ([]Digest, error) {
	var out []Digest
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) < MinLength {
			return nil, fmt.Errorf("line %d: token shorter than %d characters", n+1, MinLength)
		}
		out = append(out, Sum(line))
	}
	if len(out) == 0 {
		return nil, errors.New("holds no token")
	}
	return out, nil
}

// Credential is the token a request presents: "Authorization: Bearer <token>",
// "Authorization: Basic" with the token as password (browsers), or "X-API-Key".
// presented tells whether it presents one at all (a malformed Authorization
// counts, with an empty token).
func Credential(r *http.Request) (token string, presented bool) {
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, rest, _ := strings.Cut(a, " ")
		switch {
		case strings.EqualFold(scheme, "Bearer"):
			return strings.TrimSpace(rest), true
		case strings.EqualFold(scheme, "Basic"):
			if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest)); err == nil {
				_, pass, _ := strings.Cut(string(b), ":")
				return pass, true
			}
		}
		return "", true
	}
	if k := r.Header.Get("X-API-Key"); k != "" {
		return k, true
	}
	return "", false
}
