// Package archtest holds the test that keeps docs/ARCHITECTURE.md true: every
// package of every module is listed there with its job, and imports only what its
// row allows.
package archtest
