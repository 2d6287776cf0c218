package flagset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// The document-level encoding below is the tests' reference: it encodes any
// Document flag by flag, apart from the Set, so tests can check that a Set's
// Canonical and Revision (published or read) agree with it.

// canonicalDocument is the canonical encoding of d.
func canonicalDocument(d *Document) ([]byte, error) {
	if d == nil {
		return nil, fmt.Errorf("flagset: canonical: nil document")
	}
	keys, flags, err := canonicalFlags(d)
	if err != nil {
		return nil, fmt.Errorf("flagset: canonical: %w", err)
	}
	return assembleCanonical(d, keys, flags, d.Metadata)
}

// documentRevision is the hex SHA-256 of the canonical encoding of d without
// volatile metadata ($schema, metadata.version and metadata keys prefixed "flagsync.").
func documentRevision(d *Document) (string, error) {
	if d == nil {
		return "", fmt.Errorf("flagset: revision: nil document")
	}
	keys, flags, err := canonicalFlags(d)
	if err != nil {
		return "", fmt.Errorf("flagset: revision: %w", err)
	}
	stripped := &Document{Evaluators: d.Evaluators}
	b, err := assembleCanonical(stripped, keys, flags, stableMetadata(d.Metadata))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// canonicalFlags encodes every flag of d; keys are sorted and flags[i] belongs to keys[i].
func canonicalFlags(d *Document) (keys []string, flags [][]byte, err error) {
	keys = sortedKeys(d.Flags)
	flags = make([][]byte, len(keys))
	for i, k := range keys {
		var buf bytes.Buffer
		if err := writeCanonicalFlag(&buf, d.Flags[k], nil, nil); err != nil {
			return nil, nil, fmt.Errorf("flags.%s: %w", k, err)
		}
		flags[i] = buf.Bytes()
	}
	return keys, flags, nil
}

// assembleCanonical writes the document object around pre-encoded flags.
func assembleCanonical(d *Document, keys []string, flags [][]byte, meta map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	size := 64
	for i, b := range flags {
		size += len(keys[i]) + len(b) + 4
	}
	buf.Grow(size)
	if err := writeDocHead(&buf, d.Evaluators, d.Schema); err != nil {
		return nil, err
	}
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		writeString(&buf, k)
		buf.WriteByte(':')
		buf.Write(flags[i])
	}
	if err := writeDocTail(&buf, meta); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
