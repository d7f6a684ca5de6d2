package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// serverShutdownGrace is the server's default shutdown grace period (cmd/server). When the Deployment
// passes a -shutdown-grace style flag, that value is used instead.
const serverShutdownGrace = 15 * time.Second

// The image's user: nonroot of gcr.io/distroless/static-debian12.
const nonrootUID = 65532

// manifests holds every object of the folder's YAML files, decoded the way the API server's strict
// field validation does (case-sensitive field names): an unknown or misspelt field, a duplicate key or
// a wrong type fails the test.
type manifests struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	pdbs        []*policyv1.PodDisruptionBudget
	secrets     []*corev1.Secret
	statefuls   []*appsv1.StatefulSet
	kustomize   map[string]any
}

func load(t *testing.T) *manifests {
	t.Helper()
	return loadDir(t, ".")
}

func loadDir(t *testing.T, dir string) *manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	m := &manifests{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
		for i := 0; ; i++ {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", f, i, err)
			}
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			if err := m.add(doc); err != nil {
				t.Errorf("%s: document %d: %v", f, i, err)
			}
		}
	}
	return m
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

func (m *manifests) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	strict := func(into any) error {
		j, err := yaml.YAMLToJSONStrict(doc) // duplicate keys are errors
		if err != nil {
			return err
		}
		strictErrs, err := sigsjson.UnmarshalStrict(j, into)
		return errors.Join(append([]error{err}, strictErrs...)...)
	}
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		var o appsv1.Deployment
		m.deployments = append(m.deployments, &o)
		return strict(&o)
	case "v1 Service":
		var o corev1.Service
		m.services = append(m.services, &o)
		return strict(&o)
	case "policy/v1 PodDisruptionBudget":
		var o policyv1.PodDisruptionBudget
		m.pdbs = append(m.pdbs, &o)
		return strict(&o)
	case "apps/v1 StatefulSet":
		var o appsv1.StatefulSet
		m.statefuls = append(m.statefuls, &o)
		return strict(&o)
	case "v1 Secret":
		var o corev1.Secret
		m.secrets = append(m.secrets, &o)
		return strict(&o)
	case "kustomize.config.k8s.io/v1beta1 Kustomization":
		return yaml.UnmarshalStrict(doc, &m.kustomize)
	default:
		return fmt.Errorf("unexpected object %s %s: add it to this test", tm.APIVersion, tm.Kind)
	}
}

func (m *manifests) deployment(t *testing.T) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	if len(m.deployments) != 1 {
		t.Fatalf("want one Deployment, found %d", len(m.deployments))
	}
	d := m.deployments[0]
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container, found %d", len(d.Spec.Template.Spec.Containers))
	}
	return d, &d.Spec.Template.Spec.Containers[0]
}

func TestManifestsDecodeStrictly(t *testing.T) {
	m := load(t)
	if len(m.deployments) != 1 || len(m.services) == 0 || len(m.pdbs) != 1 || len(m.secrets) != 1 || m.kustomize == nil {
		t.Fatalf("want a Deployment, Services, a PodDisruptionBudget, an example Secret and a kustomization; got %d/%d/%d/%d/%v",
			len(m.deployments), len(m.services), len(m.pdbs), len(m.secrets), m.kustomize != nil)
	}
}

func TestDeployment(t *testing.T) {
	m := load(t)
	d, c := m.deployment(t)
	pod := d.Spec.Template.Spec

	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas: want 2")
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the selector %v does not select the pod template's labels %v", d.Spec.Selector, d.Spec.Template.Labels)
	}

	// Non-root, read-only, no privileges.
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != nonrootUID {
		t.Errorf("pod securityContext: want runAsNonRoot true and runAsUser %d", nonrootUID)
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("container securityContext missing")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("readOnlyRootFilesystem: want true")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation: want false")
	case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL"):
		t.Error("capabilities: want drop ALL")
	}

	// Resources.
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[name]; !ok {
			t.Errorf("resources.requests.%s missing", name)
		}
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Error("resources.limits.memory missing")
	}

	// Ports, and the listen flags that make them reachable.
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["grpc"] != 9090 || ports["http"] != 8080 {
		t.Errorf("container ports: want grpc 9090 and http 8080, got %v", ports)
	}
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"-grpc-addr=0.0.0.0:9090", "-http-addr=0.0.0.0:8080"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q: want %s", args, want)
		}
	}

	// gRPC probes on the gRPC port.
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.GRPC == nil || p.GRPC.Port != 9090 {
			t.Errorf("%sProbe: want grpc on port 9090", name)
		}
	}

	// Keys from the Secret that secret.example.yaml shows.
	secret := m.secrets[0]
	// The server refuses a non-loopback bind without caller auth, so the token hash must come too.
	for _, key := range []string{"QINGCLOUD_ACCESS_KEY", "QINGCLOUD_SECRET_KEY", "QINGCLOUD_TOKEN_SHA256", "QINGCLOUD_GRPC_REDIS_URL"} {
		var ref *corev1.SecretKeySelector
		for _, e := range c.Env {
			if e.Name == key && e.ValueFrom != nil {
				ref = e.ValueFrom.SecretKeyRef
			}
		}
		switch {
		case ref == nil:
			t.Errorf("env %s: want valueFrom.secretKeyRef", key)
		case ref.Name != secret.Name:
			t.Errorf("env %s: Secret %q, but the example Secret is %q", key, ref.Name, secret.Name)
		case secret.StringData[ref.Key] == "":
			t.Errorf("env %s: key %q is not in the example Secret", key, ref.Key)
		}
	}

	// Room for the whole shutdown: preStop, then the server's grace period, then a margin.
	grace := serverShutdownGrace
	for _, a := range c.Args {
		if k, v, ok := strings.Cut(strings.TrimLeft(a, "-"), "="); ok && strings.Contains(k, "grace") {
			if grace, err = time.ParseDuration(v); err != nil {
				t.Fatalf("arg %s: %v", a, err)
			}
		}
	}
	var preStop time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	if pod.TerminationGracePeriodSeconds == nil {
		t.Fatal("terminationGracePeriodSeconds missing")
	}
	if tg := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second; tg < preStop+grace+5*time.Second {
		t.Errorf("terminationGracePeriodSeconds %s: want at least preStop %s + server grace %s + 5s", tg, preStop, grace)
	}
}

func TestServicesSelectThePods(t *testing.T) {
	m := load(t)
	d, c := m.deployment(t)
	named := map[string]int32{}
	for _, p := range c.Ports {
		named[p.Name] = p.ContainerPort
	}
	for _, s := range m.services {
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Service %s: selector %v does not select the pods %v", s.Name, s.Spec.Selector, d.Spec.Template.Labels)
		}
		for _, p := range s.Spec.Ports {
			if tp := p.TargetPort.String(); named[tp] == 0 && !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return fmt.Sprint(cp.ContainerPort) == tp }) {
				t.Errorf("Service %s port %s: targetPort %s is not a container port", s.Name, p.Name, tp)
			}
		}
	}
	s := m.services[slices.IndexFunc(m.services, func(s *corev1.Service) bool { return s.Name == "qingcloud-grpc" })]
	got := map[string]int32{}
	for _, p := range s.Spec.Ports {
		got[p.Name] = p.Port
	}
	if got["grpc"] != 9090 || got["http"] != 8080 {
		t.Errorf("Service qingcloud-grpc: want grpc 9090 and http 8080, got %v", got)
	}
}

func TestPodDisruptionBudget(t *testing.T) {
	m := load(t)
	d, _ := m.deployment(t)
	p := m.pdbs[0]
	if p.Spec.MinAvailable == nil || p.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("minAvailable: want 1")
	}
	if p.Spec.MinAvailable != nil && int32(p.Spec.MinAvailable.IntValue()) >= *d.Spec.Replicas {
		t.Errorf("minAvailable %d would block every node drain with %d replicas", p.Spec.MinAvailable.IntValue(), *d.Spec.Replicas)
	}
	sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("selector %v does not select the pods", p.Spec.Selector)
	}
}

func TestSecretExampleHoldsOnlyPlaceholders(t *testing.T) {
	m := load(t)
	for k, v := range m.secrets[0].StringData {
		if !strings.HasPrefix(v, "REPLACE_") {
			t.Errorf("secret.example.yaml %s: want a REPLACE_... placeholder, never a real value", k)
		}
	}
	if len(m.secrets[0].Data) > 0 {
		t.Error("secret.example.yaml: use stringData placeholders, not data")
	}
}

func TestKustomization(t *testing.T) {
	m := load(t)
	var res []string
	for _, r := range m.kustomize["resources"].([]any) {
		res = append(res, r.(string))
	}
	for _, want := range []string{"deployment.yaml", "service.yaml", "pdb.yaml"} {
		if !slices.Contains(res, want) {
			t.Errorf("kustomization resources %v: want %s", res, want)
		}
	}
	if slices.Contains(res, "secret.example.yaml") {
		t.Error("kustomization must not apply secret.example.yaml (placeholders)")
	}
	for _, r := range res {
		if _, err := os.Stat(r); err != nil {
			t.Errorf("kustomization resource %s: %v", r, err)
		}
	}
}

// TestRedisForTrying checks deploy/redis/: one Redis pod, non-root and read-only, without
// persistence or eviction, behind a Service that selects it on 6379, applied by its kustomization.
func TestRedisForTrying(t *testing.T) {
	m := loadDir(t, "redis")
	if len(m.statefuls) != 1 || len(m.services) != 1 || m.kustomize == nil {
		t.Fatalf("want a StatefulSet, a Service and a kustomization; got %d/%d/%v", len(m.statefuls), len(m.services), m.kustomize != nil)
	}
	ss, svc := m.statefuls[0], m.services[0]
	if ss.Spec.Replicas == nil || *ss.Spec.Replicas != 1 || ss.Spec.ServiceName != svc.Name {
		t.Errorf("StatefulSet: want 1 replica governed by Service %s", svc.Name)
	}
	pod := ss.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, found %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("pod securityContext: want runAsNonRoot")
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("container securityContext: want a read-only root filesystem and no privilege escalation")
	}
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"--maxmemory-policy noeviction", "--appendonly no"} {
		if !strings.Contains(args, want) {
			t.Errorf("redis args %q: want %s", args, want)
		}
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(ss.Spec.Template.Labels)) {
		t.Errorf("Service %s does not select the Redis pod", svc.Name)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 6379 || c.Ports[0].ContainerPort != 6379 {
		t.Errorf("want Redis on 6379")
	}
	// The server Deployment's pods must not be selected by the Redis Service, nor the reverse.
	d, _ := load(t).deployment(t)
	if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Error("the Redis Service selects the server pods")
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Error("resources.limits.memory missing")
	}
}
