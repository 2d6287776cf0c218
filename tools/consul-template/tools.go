//go:build tools

// Package tools pins consul-template, used only by the Consul change-latency bench
// (sources/consul BenchmarkConsulVsConsulTemplate) as the reference to match. It is
// its own module so its dependency graph never enters the flagsync module;
// scripts/ensure-consul-template.sh builds it.
package tools

import _ "github.com/hashicorp/consul-template"
