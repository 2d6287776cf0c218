// Package charttest renders the Helm chart in charts/flagsync with a real helm binary
// (built from source by scripts/ensure-helm.sh) and checks the manifests.
package charttest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/flagsync/flagsync/daemon"
)

const chartDir = "../flagsync"

func helmBin(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	if p := filepath.Join(cache, "flagsync", "bin", "helm"); fileExists(p) {
		return p
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	t.Fatal("helm not found in the tools cache nor on PATH: run scripts/ensure-helm.sh (make deps)")
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	// Keep helm away from any user configuration and repositories.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	if err != nil {
		return out.String() + stderr.String(), err
	}
	return out.String(), nil
}

func writeValues(t *testing.T, values string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(p, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// manifests is helm template's output by kind (kinds are unique per release here).
type manifests map[string]map[string]any

func render(t *testing.T, values string, set ...string) manifests {
	t.Helper()
	args := []string{"template", "rel", chartDir, "--namespace", "flags"}
	if values != "" {
		args = append(args, "-f", writeValues(t, values))
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := runHelm(t, args...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	ms := manifests{}
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("decoding rendered manifests: %v\n%s", err, out)
		}
		if doc == nil {
			continue
		}
		kind, _ := doc["kind"].(string)
		if _, dup := ms[kind]; dup {
			t.Fatalf("two %s manifests", kind)
		}
		if name := get(doc, "metadata", "name"); name != "rel-flagsync" {
			t.Errorf("%s named %v, want rel-flagsync", kind, name)
		}
		ms[kind] = doc
	}
	return ms
}

// get walks maps by key and lists by index ("0").
func get(v any, path ...string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i := 0
			for _, c := range p {
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func kinds(ms manifests) []string {
	var out []string
	for k := range ms {
		out = append(out, k)
	}
	return out
}

func wantKinds(t *testing.T, ms manifests, present []string, absent []string) {
	t.Helper()
	for _, k := range present {
		if ms[k] == nil {
			t.Errorf("no %s rendered (have %v)", k, kinds(ms))
		}
	}
	for _, k := range absent {
		if ms[k] != nil {
			t.Errorf("%s rendered, want none", k)
		}
	}
}

func container(t *testing.T, workload map[string]any) map[string]any {
	t.Helper()
	c, ok := get(workload, "spec", "template", "spec", "containers", "0").(map[string]any)
	if !ok {
		t.Fatalf("no container in %v", workload["kind"])
	}
	return c
}

func envByName(c map[string]any) map[string]any {
	out := map[string]any{}
	list, _ := c["env"].([]any)
	for _, e := range list {
		m := e.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

func TestLint(t *testing.T) {
	if out, err := runHelm(t, "lint", "--strict", chartDir); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
	if out, err := runHelm(t, "lint", "--strict", chartDir, "-f", writeValues(t, prodValues)); err != nil {
		t.Fatalf("helm lint (prod values): %v\n%s", err, out)
	}
}

func TestDefaults(t *testing.T) {
	ms := render(t, "")
	wantKinds(t, ms, []string{"Deployment", "Service", "ConfigMap", "ServiceAccount", "PodDisruptionBudget"},
		[]string{"DaemonSet", "ServiceMonitor"})
	d := ms["Deployment"]
	if r := get(d, "spec", "replicas"); r != 2 {
		t.Errorf("replicas %v, want 2", r)
	}
	pod := get(d, "spec", "template", "spec")
	if get(pod, "securityContext", "runAsNonRoot") != true || get(pod, "securityContext", "runAsUser") != 65532 {
		t.Errorf("pod securityContext %v", get(pod, "securityContext"))
	}
	c := container(t, d)
	sc := c["securityContext"]
	if get(sc, "readOnlyRootFilesystem") != true || get(sc, "allowPrivilegeEscalation") != false ||
		get(sc, "capabilities", "drop", "0") != "ALL" || get(sc, "runAsUser") != 65532 {
		t.Errorf("container securityContext %v", sc)
	}
	if p := get(c, "livenessProbe", "httpGet", "path"); p != "/healthz" {
		t.Errorf("liveness path %v", p)
	}
	if p := get(c, "readinessProbe", "httpGet", "path"); p != "/readyz" {
		t.Errorf("readiness path %v", p)
	}
	if get(c, "resources", "requests", "memory") == nil || get(c, "resources", "limits", "memory") == nil {
		t.Errorf("resources %v", c["resources"])
	}
	if get(c, "ports", "0", "containerPort") != 8080 || get(ms["Service"], "spec", "ports", "0", "targetPort") != "http" {
		t.Errorf("ports: container %v service %v", c["ports"], get(ms["Service"], "spec", "ports"))
	}
	if get(pod, "affinity", "podAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution", "0", "podAffinityTerm", "topologyKey") != "kubernetes.io/hostname" {
		t.Errorf("anti-affinity %v", get(pod, "affinity"))
	}
	if get(ms["PodDisruptionBudget"], "spec", "minAvailable") != 1 {
		t.Errorf("pdb %v", ms["PodDisruptionBudget"]["spec"])
	}
	// The config is valid YAML and is what the container is told to read.
	var cfg map[string]any
	raw, _ := get(ms["ConfigMap"], "data", "flagsync.yaml").(string)
	if err := yaml.Unmarshal([]byte(raw), &cfg); err != nil || cfg["flagSetId"] != "default" {
		t.Errorf("config map flagsync.yaml: %v %q", err, raw)
	}
	if dc, err := daemon.ParseConfig([]byte(raw), nil); err != nil || dc.HA.Enabled || !dc.HTTP.OFREP.On() {
		t.Errorf("the daemon's view of the default config: %v", err)
	}
	args, _ := c["args"].([]any)
	if len(args) != 3 || args[0] != "run" || args[2] != "/etc/flagsync/flagsync.yaml" {
		t.Errorf("args %v", args)
	}
	if !strings.HasPrefix(get(cfg, "outputs", "file", "path").(string), "/var/run/flagsync/") {
		t.Errorf("snapshot file %v is not on the output volume", get(cfg, "outputs", "file", "path"))
	}
	if get(pod, "volumes", "1", "emptyDir") == nil {
		t.Errorf("output volume %v, want emptyDir", get(pod, "volumes", "1"))
	}
}

const prodValues = `
replicaCount: 3
image:
  tag: "1.2.3"
podAntiAffinity: hard
serviceAccount:
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/flagsync-ssm-read
secrets:
  consulToken:
    secretName: flagsync-consul
  redisPassword:
    secretName: flagsync-redis
    key: redis-password
serviceMonitor:
  enabled: true
  labels:
    release: prometheus
podDisruptionBudget:
  maxUnavailable: 1
config:
  flagSetId: shop
  sources:
    - name: ssm-prod
      type: ssm
      path: /flags/shop/
      region: eu-west-1
    - name: consul
      type: consul
      address: consul.service:8500
      token: ${FLAGSYNC_CONSUL_TOKEN}
      prefix: flags/shop/
  outputs:
    file:
      path: /var/run/flagsync/flags.json
    redis:
      url: redis://:${FLAGSYNC_REDIS_PASSWORD}@redis-master:6379/0
  http:
    listen: 0.0.0.0:8080
    ofrep:
      apiKeys: ["${OFREP_API_KEY}"]
  ha:
    enabled: true
    ttl: 10s
`

func TestProductionValues(t *testing.T) {
	ms := render(t, prodValues)
	wantKinds(t, ms, []string{"Deployment", "ServiceMonitor", "PodDisruptionBudget", "ServiceAccount"}, []string{"DaemonSet"})
	d := ms["Deployment"]
	if get(d, "spec", "replicas") != 3 {
		t.Errorf("replicas %v, want 3", get(d, "spec", "replicas"))
	}
	c := container(t, d)
	if c["image"] != "flagsync/flagsync:1.2.3" {
		t.Errorf("image %v", c["image"])
	}
	env := envByName(c)
	if get(env["FLAGSYNC_CONSUL_TOKEN"], "valueFrom", "secretKeyRef", "name") != "flagsync-consul" ||
		get(env["FLAGSYNC_CONSUL_TOKEN"], "valueFrom", "secretKeyRef", "key") != "token" {
		t.Errorf("consul token env %v", env["FLAGSYNC_CONSUL_TOKEN"])
	}
	if get(env["FLAGSYNC_REDIS_PASSWORD"], "valueFrom", "secretKeyRef", "name") != "flagsync-redis" ||
		get(env["FLAGSYNC_REDIS_PASSWORD"], "valueFrom", "secretKeyRef", "key") != "redis-password" {
		t.Errorf("redis password env %v", env["FLAGSYNC_REDIS_PASSWORD"])
	}
	// Secrets stay references: the ConfigMap holds ${VAR}, never a value.
	raw := get(ms["ConfigMap"], "data", "flagsync.yaml").(string)
	if !strings.Contains(raw, "${FLAGSYNC_REDIS_PASSWORD}") || !strings.Contains(raw, "${FLAGSYNC_CONSUL_TOKEN}") {
		t.Errorf("config lost the ${ENV} references:\n%s", raw)
	}
	// The daemon accepts the rendered configuration: three replicas, one leader
	// elected through the consul source's agent.
	lookup := func(k string) (string, bool) { return "x-" + k, true }
	dc, err := daemon.ParseConfig([]byte(raw), lookup)
	if err != nil {
		t.Fatalf("the daemon rejects the rendered config: %v\n%s", err, raw)
	}
	if !dc.HA.Enabled || dc.HA.Backend != daemon.HABackendConsul || dc.HA.Key != "flagsync/shop/leader" ||
		len(dc.HTTP.OFREP.APIKeys) != 1 || dc.HTTP.OFREP.APIKeys[0] != "x-OFREP_API_KEY" {
		t.Errorf("rendered config: ha %+v ofrep %+v", dc.HA, dc.HTTP.OFREP)
	}
	if get(env["POD_NAME"], "valueFrom", "fieldRef", "fieldPath") != "metadata.name" {
		t.Errorf("POD_NAME (the Consul lock holder) %v", env["POD_NAME"])
	}
	if get(ms["ServiceAccount"], "metadata", "annotations", "eks.amazonaws.com/role-arn") != "arn:aws:iam::123456789012:role/flagsync-ssm-read" {
		t.Errorf("service account annotations %v", get(ms["ServiceAccount"], "metadata", "annotations"))
	}
	if get(d, "spec", "template", "spec", "serviceAccountName") != "rel-flagsync" {
		t.Errorf("pod service account %v", get(d, "spec", "template", "spec", "serviceAccountName"))
	}
	sm := ms["ServiceMonitor"]
	if get(sm, "metadata", "labels", "release") != "prometheus" || get(sm, "spec", "endpoints", "0", "path") != "/metrics" ||
		get(sm, "spec", "endpoints", "0", "port") != "http" {
		t.Errorf("service monitor %v", sm)
	}
	if get(d, "spec", "template", "spec", "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "0", "topologyKey") != "kubernetes.io/hostname" {
		t.Errorf("hard anti-affinity %v", get(d, "spec", "template", "spec", "affinity"))
	}
	pdb := get(ms["PodDisruptionBudget"], "spec").(map[string]any)
	if pdb["maxUnavailable"] != 1 || pdb["minAvailable"] != nil {
		t.Errorf("pdb spec %v", pdb)
	}
	// A config change rolls the pods.
	other := render(t, strings.Replace(prodValues, "flagSetId: shop", "flagSetId: shop2", 1))
	a := get(d, "spec", "template", "metadata", "annotations", "checksum/config")
	b := get(other["Deployment"], "spec", "template", "metadata", "annotations", "checksum/config")
	if a == nil || a == b {
		t.Errorf("config checksum %v does not change with the config (%v)", a, b)
	}
}

func TestDaemonSetMode(t *testing.T) {
	ms := render(t, "", "mode=daemonset", "output.volume=hostPath")
	wantKinds(t, ms, []string{"DaemonSet", "Service", "ConfigMap"}, []string{"Deployment", "PodDisruptionBudget"})
	ds := ms["DaemonSet"]
	if get(ds, "spec", "replicas") != nil {
		t.Error("DaemonSet has replicas")
	}
	vol := get(ds, "spec", "template", "spec", "volumes", "1")
	if get(vol, "name") != "output" || get(vol, "hostPath", "path") != "/var/lib/flagsync" {
		t.Errorf("output volume %v, want hostPath /var/lib/flagsync", vol)
	}
	if get(ds, "spec", "template", "spec", "affinity") != nil {
		t.Errorf("DaemonSet has anti-affinity %v", get(ds, "spec", "template", "spec", "affinity"))
	}
	if get(container(t, ds), "securityContext", "readOnlyRootFilesystem") != true {
		t.Error("DaemonSet container not read-only")
	}
}

func TestSingleReplicaHasNoPDB(t *testing.T) {
	ms := render(t, "", "replicaCount=1")
	wantKinds(t, ms, []string{"Deployment"}, []string{"PodDisruptionBudget"})
}

func TestInvalidValuesFail(t *testing.T) {
	for _, set := range []string{"mode=sidecar", "output.volume=pvc", "podAntiAffinity=always"} {
		out, err := runHelm(t, "template", "rel", chartDir, "--set", set)
		if err == nil || !strings.Contains(out, "must be") {
			t.Errorf("--set %s: err=%v, want a clear failure; output:\n%s", set, err, out)
		}
	}
}

// The default release only lets labelled clients (and Prometheus) reach the port.
func TestNetworkPolicy(t *testing.T) {
	ms := render(t, "")
	np := ms["NetworkPolicy"]
	if np == nil {
		t.Fatalf("no NetworkPolicy by default (have %v)", kinds(ms))
	}
	if get(np, "spec", "podSelector", "matchLabels", "app.kubernetes.io/instance") != "rel" ||
		get(np, "spec", "policyTypes", "0") != "Ingress" || get(np, "spec", "policyTypes", "1") != nil {
		t.Errorf("network policy spec %v", np["spec"])
	}
	rule := get(np, "spec", "ingress", "0")
	if get(rule, "ports", "0", "port") != "http" ||
		get(rule, "from", "0", "podSelector", "matchLabels", "flagsync.io/client") != "true" ||
		get(rule, "from", "1", "namespaceSelector", "matchLabels", "flagsync.io/client") != "true" ||
		get(rule, "from", "2", "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name") != "monitoring" ||
		get(np, "spec", "ingress", "1") != nil {
		t.Errorf("ingress rules %v", get(np, "spec", "ingress"))
	}
	off := render(t, "", "networkPolicy.enabled=false")
	wantKinds(t, off, nil, []string{"NetworkPolicy"})
	// Denying everything is possible too: no peers, no rule.
	closed := render(t, "networkPolicy:\n  allowedFrom: []\n  metricsFrom: []\n")
	if get(closed["NetworkPolicy"], "spec", "ingress", "0") != nil {
		t.Errorf("ingress without peers %v", get(closed["NetworkPolicy"], "spec", "ingress"))
	}
}

// Token Secrets are mounted read-only and named in the daemon's http.auth; with an
// admin Secret the Service's names may call admin routes; Prometheus uses the read token.
func TestAuthSecrets(t *testing.T) {
	ms := render(t, "auth:\n  read: {secretName: flagsync-read}\n  admin: {secretName: flagsync-admin, key: admin-tokens}\nserviceMonitor: {enabled: true}\n")
	d := ms["Deployment"]
	c := container(t, d)
	mounts := map[string]any{}
	for _, m := range c["volumeMounts"].([]any) {
		mounts[get(m, "name").(string)] = m
	}
	if get(mounts["tokens-read"], "mountPath") != "/etc/flagsync/tokens/read" || get(mounts["tokens-read"], "readOnly") != true ||
		get(mounts["tokens-admin"], "mountPath") != "/etc/flagsync/tokens/admin" {
		t.Errorf("token mounts %v", c["volumeMounts"])
	}
	vols := map[string]any{}
	for _, v := range get(d, "spec", "template", "spec", "volumes").([]any) {
		vols[get(v, "name").(string)] = v
	}
	if get(vols["tokens-admin"], "secret", "secretName") != "flagsync-admin" || get(vols["tokens-admin"], "secret", "items", "0", "key") != "admin-tokens" ||
		get(vols["tokens-read"], "secret", "defaultMode") != 0o400 {
		t.Errorf("token volumes %v", vols)
	}
	// Secrets are referenced, never rendered: no Secret object, no token in the config.
	wantKinds(t, ms, nil, []string{"Secret"})
	raw := get(ms["ConfigMap"], "data", "flagsync.yaml").(string)
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	if get(cfg, "http", "auth", "read", "files", "0") != "/etc/flagsync/tokens/read/tokens" ||
		get(cfg, "http", "auth", "admin", "files", "0") != "/etc/flagsync/tokens/admin/admin-tokens" ||
		get(cfg, "http", "allowedHosts", "6") != "rel-flagsync.flags.svc.cluster.local" || get(cfg, "http", "listen") != "0.0.0.0:8080" {
		t.Errorf("rendered http config:\n%s", raw)
	}
	// The daemon accepts the rendered configuration once the files exist.
	dir := t.TempDir()
	for _, f := range []string{"read", "admin"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("token-of-the-"+f+"-role-0123456789\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	local := strings.NewReplacer("/etc/flagsync/tokens/read/tokens", filepath.Join(dir, "read"), "/etc/flagsync/tokens/admin/admin-tokens", filepath.Join(dir, "admin")).Replace(raw)
	if _, err := daemon.ParseConfig([]byte(local), nil); err != nil {
		t.Errorf("the daemon rejects the rendered config: %v\n%s", err, local)
	}
	if get(ms["ServiceMonitor"], "spec", "endpoints", "0", "authorization", "credentials", "name") != "flagsync-read" {
		t.Errorf("service monitor does not present the read token: %v", get(ms["ServiceMonitor"], "spec", "endpoints", "0"))
	}
	open := render(t, "auth:\n  read: {secretName: flagsync-read}\n  openMetrics: true\nserviceMonitor: {enabled: true}\n")
	raw = get(open["ConfigMap"], "data", "flagsync.yaml").(string)
	if get(open["ServiceMonitor"], "spec", "endpoints", "0", "authorization") != nil || !strings.Contains(raw, "openMetrics: true") || strings.Contains(raw, "allowedHosts") {
		t.Errorf("openMetrics release: monitor %v config\n%s", get(open["ServiceMonitor"], "spec", "endpoints", "0"), raw)
	}
}
