//go:build tools

// Package tools pins the Consul agent used by the test suites (v1.14.11, the last
// MPL-2.0 release). It is its own module so the agent's large dependency graph never
// enters the flagsync module; scripts/ensure-consul.sh builds it.
package tools

import _ "github.com/hashicorp/consul"
