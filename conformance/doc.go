// Package conformance holds the language-neutral conformance suite of the flagsync
// format: flag files, JSONL cases with expected results, and known-answer vectors
// (MurmurHash3, fractional bucketing, canonical encoding). The Go tests run them
// against flagset and the flagsync CLI; the Python package and the OpenFeature
// provider run the same files. See README.md for the contract.
package conformance
