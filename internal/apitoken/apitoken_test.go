package apitoken

import (
	"crypto/sha256"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var tokenFileError = regexp.MustCompile(`^(line \d+: token shorter than 16 characters|holds no token)$`)

// FuzzParseTokenFile: any content parses or fails with a message that quotes nothing
// from the file, and every token parsed is a non-comment line of it.
func FuzzParseTokenFile(f *testing.F) {
	f.Add([]byte("# tokens\nold-admin-token-0123456789\n\nnew-admin-token-0123456789\n"))
	f.Add([]byte("short\n"))
	f.Add([]byte("\r\n  spaced-token-0123456789  \r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		toks, err := ParseFile(b)
		if err != nil {
			if !tokenFileError.MatchString(err.Error()) {
				t.Fatalf("error %q is not one of the fixed messages", err)
			}
			return
		}
		lines := map[Digest]bool{}
		for _, line := range strings.Split(string(b), "\n") {
			lines[sha256.Sum256([]byte(strings.TrimSpace(line)))] = true
		}
		for _, tok := range toks {
			if !lines[tok] {
				t.Fatalf("a parsed token is no line of the file")
			}
		}
	})
}

// FuzzCredential: any Authorization / X-API-Key header yields a credential without
// panicking, and a header that is present always counts as presented.
func FuzzCredential(f *testing.F) {
	f.Add("Bearer abc", "")
	f.Add("Basic dXNlcjpwYXNz", "")
	f.Add("Basic !!!", "k")
	f.Add("", "key-0123456789")
	f.Fuzz(func(t *testing.T, auth, key string) {
		r, _ := http.NewRequest("GET", "http://127.0.0.1/", nil)
		r.Header["Authorization"] = []string{auth}
		r.Header["X-Api-Key"] = []string{key}
		tok, presented := Credential(r)
		if (auth != "" || key != "") != presented {
			t.Fatalf("presented = %v for %q / %q", presented, auth, key)
		}
		if auth == "" && key != "" && tok != key {
			t.Fatalf("X-API-Key %q read as %q", key, tok)
		}
	})
}
