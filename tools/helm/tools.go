//go:build tools

// Package tools pins the helm CLI (helm.sh/helm/v3, Apache-2.0) used by the chart tests.
// It is its own module so helm's large Kubernetes dependency graph never enters the
// flagsync module; scripts/ensure-helm.sh builds it.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
