package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The subset of the Kubernetes API deploy/kubernetes.yaml uses. Decoding is
// strict: a field outside these types (a typo such as readinesProbe) fails.

type objectMeta struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type configMap struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   objectMeta        `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
}

type deployment struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       struct {
		Replicas int `yaml:"replicas"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata objectMeta `yaml:"metadata"`
			Spec     podSpec    `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds int   `yaml:"terminationGracePeriodSeconds"`
	AutomountServiceAccountToken  *bool `yaml:"automountServiceAccountToken"`
	SecurityContext               struct {
		RunAsNonRoot   bool  `yaml:"runAsNonRoot"`
		RunAsUser      int64 `yaml:"runAsUser"`
		RunAsGroup     int64 `yaml:"runAsGroup"`
		FSGroup        int64 `yaml:"fsGroup"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	InitContainers []container `yaml:"initContainers"`
	Containers     []container `yaml:"containers"`
	Volumes        []volume    `yaml:"volumes"`
}

type container struct {
	Name          string   `yaml:"name"`
	Image         string   `yaml:"image"`
	RestartPolicy string   `yaml:"restartPolicy"`
	Args          []string `yaml:"args"`
	WorkingDir    string   `yaml:"workingDir"`
	Env           []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	StartupProbe   *probe `yaml:"startupProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext *struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type probe struct {
	HTTPGet *struct {
		Path string      `yaml:"path"`
		Port intOrString `yaml:"port"`
	} `yaml:"httpGet"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

type volume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name string `yaml:"name"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName  string `yaml:"secretName"`
		DefaultMode int    `yaml:"defaultMode"`
		Items       []struct {
			Key  string `yaml:"key"`
			Path string `yaml:"path"`
		} `yaml:"items"`
	} `yaml:"secret"`
	EmptyDir              *struct{} `yaml:"emptyDir"`
	PersistentVolumeClaim *struct {
		ClaimName string `yaml:"claimName"`
	} `yaml:"persistentVolumeClaim"`
}

type service struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string      `yaml:"name"`
			Port       int         `yaml:"port"`
			TargetPort intOrString `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type ingress struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       struct {
		IngressClassName string `yaml:"ingressClassName"`
		TLS              []struct {
			Hosts      []string `yaml:"hosts"`
			SecretName string   `yaml:"secretName"`
		} `yaml:"tls"`
		Rules []struct {
			Host string `yaml:"host"`
			HTTP struct {
				Paths []struct {
					Path     string `yaml:"path"`
					PathType string `yaml:"pathType"`
					Backend  struct {
						Service struct {
							Name string `yaml:"name"`
							Port struct {
								Name   string `yaml:"name"`
								Number int    `yaml:"number"`
							} `yaml:"port"`
						} `yaml:"service"`
					} `yaml:"backend"`
				} `yaml:"paths"`
			} `yaml:"http"`
		} `yaml:"rules"`
	} `yaml:"spec"`
}

type podDisruptionBudget struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       struct {
		MaxUnavailable *intOrString `yaml:"maxUnavailable"`
		MinAvailable   *intOrString `yaml:"minAvailable"`
		Selector       struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	} `yaml:"spec"`
}

type networkPolicy struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       struct {
		PodSelector labelSelector `yaml:"podSelector"`
		PolicyTypes []string      `yaml:"policyTypes"`
		Ingress     []struct {
			From []struct {
				NamespaceSelector *labelSelector `yaml:"namespaceSelector"`
				PodSelector       *labelSelector `yaml:"podSelector"`
				IPBlock           *struct {
					CIDR   string   `yaml:"cidr"`
					Except []string `yaml:"except"`
				} `yaml:"ipBlock"`
			} `yaml:"from"`
			Ports []struct {
				Protocol string      `yaml:"protocol"`
				Port     intOrString `yaml:"port"`
			} `yaml:"ports"`
		} `yaml:"ingress"`
	} `yaml:"spec"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// intOrString is Kubernetes' IntOrString: a port number or a port name.
type intOrString string

func (v *intOrString) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a port number or name", n.Line)
	}
	*v = intOrString(n.Value)
	return nil
}

// manifest is deploy/kubernetes.yaml, one object of each kind; the
// PodDisruptionBudget and the NetworkPolicy may be missing (a check, not the
// parse, says so).
type manifest struct {
	ConfigMap  configMap
	Deployment deployment
	Service    service
	Ingress    ingress
	PDB        *podDisruptionBudget
	NetPol     *networkPolicy
}

func readManifest(t *testing.T) manifest {
	t.Helper()
	data, err := os.ReadFile("kubernetes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseManifest(data)
	if err != nil {
		t.Fatalf("kubernetes.yaml: %v", err)
	}
	return m
}

func parseManifest(data []byte) (manifest, error) {
	var m manifest
	seen := map[string]bool{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, err
		}
		var head struct {
			Kind string `yaml:"kind"`
		}
		if err := doc.Decode(&head); err != nil {
			return m, err
		}
		raw, err := yaml.Marshal(&doc)
		if err != nil {
			return m, err
		}
		var target any
		switch head.Kind {
		case "ConfigMap":
			target = &m.ConfigMap
		case "Deployment":
			target = &m.Deployment
		case "Service":
			target = &m.Service
		case "Ingress":
			target = &m.Ingress
		case "PodDisruptionBudget":
			m.PDB = &podDisruptionBudget{}
			target = m.PDB
		case "NetworkPolicy":
			m.NetPol = &networkPolicy{}
			target = m.NetPol
		default:
			return m, fmt.Errorf("line %d: unexpected kind %q", doc.Line, head.Kind)
		}
		if seen[head.Kind] {
			return m, fmt.Errorf("two objects of kind %s", head.Kind)
		}
		seen[head.Kind] = true
		if err := decodeStrict(raw, target); err != nil {
			return m, fmt.Errorf("%s: %w", head.Kind, err)
		}
	}
	for _, k := range []string{"ConfigMap", "Deployment", "Service", "Ingress"} {
		if !seen[k] {
			return m, fmt.Errorf("no %s", k)
		}
	}
	return m, nil
}

// paygateContainer finds the paygate container: a native sidecar (an init
// container with restartPolicy Always) or a plain container.
func paygateContainer(p *podSpec) (*container, bool) {
	for i := range p.InitContainers {
		if c := &p.InitContainers[i]; c.Name == "paygate" {
			return c, c.RestartPolicy == "Always"
		}
	}
	for i := range p.Containers {
		if c := &p.Containers[i]; c.Name == "paygate" {
			return c, true
		}
	}
	return nil, false
}

func containerPort(c *container, ref intOrString) (int, bool) {
	for _, p := range c.Ports {
		if string(ref) == p.Name || string(ref) == strconv.Itoa(p.ContainerPort) {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return -1
	}
	n, _ := strconv.Atoi(p)
	return n
}

// fileKeys lists the values of every "*_file" key in a YAML document.
func fileKeys(n *yaml.Node, out map[string]string, at string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			fileKeys(c, out, at)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			fileKeys(c, out, fmt.Sprintf("%s[%d]", at, i))
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := strings.TrimPrefix(at+"."+k.Value, ".")
			if strings.HasSuffix(k.Value, "_file") && v.Kind == yaml.ScalarNode && v.Value != "" {
				out[p] = v.Value
			}
			fileKeys(v, out, p)
		}
	}
}

// kubeConfig is the paygate config carried by the manifest, ready for
// check-config: written to dir with the secret volume's mount path replaced
// by dir/secrets, where every secret item exists as a file.
type kubeConfig struct {
	file string            // the config on disk
	env  map[string]string // the paygate container's literal env
}

// checkKubernetes checks the manifest's objects against each other, the
// Dockerfile's runtime stage and the paygate config in the ConfigMap. dir is
// a scratch directory for that config and stand-in secret files.
func checkKubernetes(m manifest, img image, dir string) (ps problems, kc kubeConfig) {
	d := &m.Deployment
	pod := &d.Spec.Template.Spec
	pg, sidecar := paygateContainer(pod)
	if pg == nil {
		ps.add("no paygate container")
		return ps, kc
	}
	if !sidecar {
		ps.add("paygate is an init container without restartPolicy Always: it would block the bot")
	}
	var bot *container
	for i := range pod.Containers {
		if pod.Containers[i].Name == "bot" {
			bot = &pod.Containers[i]
		}
	}
	if bot == nil {
		ps.add("no bot container next to paygate")
		return ps, kc
	}
	if !strings.Contains(pg.Image, "paygate") {
		ps.add("paygate image %q", pg.Image)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Metadata.Labels[k] != v {
			ps.add("deployment selector %s=%s does not match the pod labels", k, v)
		}
	}

	// Security: the image's non-root user, read-only root.
	uid, _, _ := strings.Cut(img.User, ":")
	if sc := pod.SecurityContext; !sc.RunAsNonRoot || strconv.FormatInt(sc.RunAsUser, 10) != uid || strconv.FormatInt(sc.FSGroup, 10) != uid {
		ps.add("pod securityContext: want runAsNonRoot, runAsUser and fsGroup %s (the image's USER)", uid)
	}
	if pg.SecurityContext == nil || !pg.SecurityContext.ReadOnlyRootFilesystem {
		ps.add("paygate: root filesystem not read-only")
	}

	// Volumes by name and where paygate mounts them.
	vols := map[string]*volume{}
	for i := range pod.Volumes {
		vols[pod.Volumes[i].Name] = &pod.Volumes[i]
	}
	var configDir, secretDir string
	var secretVol *volume
	dataMounted := false
	var dataVol *volume
	for _, vm := range pg.VolumeMounts {
		v := vols[vm.Name]
		switch {
		case v == nil:
			ps.add("paygate mounts volume %q, which the pod does not have", vm.Name)
		case v.ConfigMap != nil:
			if v.ConfigMap.Name != m.ConfigMap.Metadata.Name {
				ps.add("config volume names ConfigMap %q; the manifest's is %q", v.ConfigMap.Name, m.ConfigMap.Metadata.Name)
			}
			if !vm.ReadOnly {
				ps.add("the config mount %s is not readOnly", vm.MountPath)
			}
			configDir = vm.MountPath
		case v.Secret != nil:
			if !vm.ReadOnly {
				ps.add("the secret mount %s is not readOnly", vm.MountPath)
			}
			secretDir, secretVol = vm.MountPath, v
		case len(img.Volumes) > 0 && vm.MountPath == img.Volumes[0]:
			if vm.ReadOnly {
				ps.add("the data directory %s is mounted read-only", vm.MountPath)
			}
			dataMounted, dataVol = true, v
		}
	}
	if !dataMounted {
		ps.add("paygate: the image's data directory %v is not mounted (the root filesystem is read-only)", img.Volumes)
	}

	// The config: the file the args name, inside the ConfigMap.
	cfgPath := ""
	for i, a := range pg.Args {
		if a == "-config" && i+1 < len(pg.Args) {
			cfgPath = pg.Args[i+1]
		}
	}
	if len(pg.Args) == 0 || pg.Args[0] != "serve" || cfgPath == "" {
		ps.add("paygate args %q: want serve -config FILE", pg.Args)
		return ps, kc
	}
	if configDir == "" || path.Dir(cfgPath) != configDir {
		ps.add("-config %s is not in the ConfigMap mount %q", cfgPath, configDir)
		return ps, kc
	}
	text, ok := m.ConfigMap.Data[path.Base(cfgPath)]
	if !ok {
		ps.add("ConfigMap %s has no key %s", m.ConfigMap.Metadata.Name, path.Base(cfgPath))
		return ps, kc
	}

	// Secrets: every *_file key names an item of the mounted Secret.
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		ps.add("config in the ConfigMap: %v", err)
		return ps, kc
	}
	files := map[string]string{}
	fileKeys(&doc, files, "")
	items := map[string]string{} // path in the volume -> Secret key
	if secretVol != nil {
		for _, it := range secretVol.Secret.Items {
			items[it.Path] = it.Key
		}
	}
	stand := filepath.Join(dir, "secrets")
	standIns := map[string]bool{} // what each Secret item's stand-in file holds
	if err := os.MkdirAll(stand, 0o700); err != nil {
		ps.add("%v", err)
		return ps, kc
	}
	for it := range items {
		content := "stand-in-secret-" + it
		if strings.Contains(it, "apiv3") {
			content = strings.Repeat("k", 32) // an APIv3 key is 32 bytes
		}
		if pemData, ok := standInPEM(it); ok {
			content = string(pemData) // check-config reads key files as PEM
		}
		standIns[content] = true
		if err := os.WriteFile(filepath.Join(stand, it), []byte(content), 0o600); err != nil {
			ps.add("%v", err)
		}
	}
	for key, file := range files {
		rel, ok := strings.CutPrefix(file, secretDir+"/")
		if secretDir == "" || !ok {
			ps.add("config %s: %s is not in the Secret mount %q", key, file, secretDir)
			continue
		}
		if _, ok := items[rel]; !ok {
			ps.add("config %s: %s is not an item of Secret %q", key, rel, secretVol.Secret.SecretName)
		}
	}
	if secretDir != "" {
		text = strings.ReplaceAll(text, secretDir+"/", stand+"/")
	}
	kc.file = filepath.Join(dir, path.Base(cfgPath))
	if err := os.WriteFile(kc.file, []byte(text), 0o600); err != nil {
		ps.add("%v", err)
		return ps, kc
	}
	kc.env = map[string]string{}
	for _, e := range pg.Env {
		if e.ValueFrom != nil {
			ps.add("paygate env %s comes from valueFrom; mount secrets as files instead", e.Name)
			continue
		}
		kc.env[e.Name] = e.Value
	}
	cfg, err := loadConfig(kc.file, kc.env)
	if err != nil {
		ps.add("config in the ConfigMap: %v", err)
		return ps, kc
	}
	// Every secret paygate holds came from the Secret's files: one written
	// in the ConfigMap (key: instead of key_file:) or given as a pod env
	// value (a ${VAR} the config reads) is in plain view of whoever may
	// read ConfigMaps or the Deployment (kubectl describe), which the
	// manifest's Secret exists to avoid.
	for _, s := range cfg.Secrets() {
		if !standIns[s] {
			name := ""
			if secretVol != nil {
				name = secretVol.Secret.SecretName
			}
			ps.add("config holds a secret (%d characters) not read from a file of Secret %q: written in the ConfigMap or given as a pod env value, where kubectl describe shows it; use the *_file key", len(s), name)
		}
	}

	// The bot reaches paygate over the pod's loopback only.
	if host, _, _ := net.SplitHostPort(cfg.Server.Listen); host != "127.0.0.1" {
		ps.add("config: listen %q; a sidecar listens on 127.0.0.1 only", cfg.Server.Listen)
	}
	baseURL := ""
	for _, e := range bot.Env {
		if e.Name == "OPENAI_BASE_URL" {
			baseURL = e.Value
		}
	}
	if want := "http://" + cfg.Server.Listen + "/v1"; baseURL != want {
		ps.add("bot: OPENAI_BASE_URL %q; want %q", baseURL, want)
	}
	for _, e := range bot.Env {
		if e.Name == "OPENAI_API_KEY" {
			ref := e.ValueFrom
			if ref == nil || ref.SecretKeyRef == nil || secretVol == nil || ref.SecretKeyRef.Name != secretVol.Secret.SecretName ||
				ref.SecretKeyRef.Key != items[strings.TrimPrefix(files["clients[0].key_file"], secretDir+"/")] {
				ps.add("bot: OPENAI_API_KEY is not the Secret key paygate reads clients[0].key_file from")
			}
		}
	}

	// Probes: /healthz on the admin listener, reachable by the kubelet. The
	// sidecar's readiness is the pod's: on /readyz (store reachable) a
	// store outage would take the bot out of its Service, though chat goes
	// on without the store (SPEC 6), so readiness, if probed, is /healthz.
	adminPort := portOf(cfg.Server.AdminListen)
	if host, _, _ := net.SplitHostPort(cfg.Server.AdminListen); host != "0.0.0.0" {
		ps.add("config: admin_listen %q is not reachable by the kubelet's probes", cfg.Server.AdminListen)
	}
	for _, pr := range []struct {
		name, path string
		p          *probe
		optional   bool
	}{{"readinessProbe", "/healthz", pg.ReadinessProbe, true}, {"livenessProbe", "/healthz", pg.LivenessProbe, false}} {
		if pr.optional && pr.p == nil {
			continue
		}
		if pr.p == nil || pr.p.HTTPGet == nil {
			ps.add("paygate: no %s httpGet", pr.name)
			continue
		}
		if pr.p.HTTPGet.Path != pr.path {
			ps.add("paygate: %s path %q; want %q (a sidecar's readiness on /readyz takes the bot's pod out of its Service while the store is down)", pr.name, pr.p.HTTPGet.Path, pr.path)
		}
		if port, ok := containerPort(pg, pr.p.HTTPGet.Port); !ok || port != adminPort {
			ps.add("paygate: %s port %q is not the admin listener's port %d", pr.name, pr.p.HTTPGet.Port, adminPort)
		}
	}

	// The notify listener: a Service port, and the Ingress's only path.
	notifyPort := portOf(cfg.Server.NotifyListen)
	if notifyPort <= 0 {
		ps.add("config: no notify_listen; the Ingress would expose the whole client API")
	}
	s := &m.Service
	inInit := slices.ContainsFunc(pod.InitContainers, func(c container) bool { return c.Name == "paygate" })
	for k, v := range s.Spec.Selector {
		if d.Spec.Template.Metadata.Labels[k] != v {
			ps.add("service selector %s=%s does not select the pod", k, v)
		}
	}
	if len(s.Spec.Ports) != 1 {
		ps.add("service: %d ports; want only the notify port", len(s.Spec.Ports))
	}
	for _, p := range s.Spec.Ports {
		if cp, ok := containerPort(pg, p.TargetPort); !ok || cp != notifyPort {
			ps.add("service port %s targets %q, not the notify listener's port %d", p.Name, p.TargetPort, notifyPort)
		}
		// Kubernetes before 1.32 (kubernetes/kubernetes#127958) looks a
		// named targetPort up in the pod's regular containers only: one
		// naming a port of a native sidecar gave the Service no endpoint,
		// so every WeChat Pay notification failed at the Ingress.
		if _, err := strconv.Atoi(string(p.TargetPort)); err != nil && inInit {
			ps.add("service port %s targets the native sidecar's port by name %q: Kubernetes before 1.32 finds no endpoint for it; give the number", p.Name, p.TargetPort)
		}
	}
	ing := &m.Ingress
	var paths int
	for _, r := range ing.Spec.Rules {
		tls := false
		for _, t := range ing.Spec.TLS {
			for _, h := range t.Hosts {
				tls = tls || h == r.Host
			}
		}
		if !tls {
			ps.add("ingress host %q has no TLS (WeChat Pay calls https only)", r.Host)
		}
		for _, p := range r.HTTP.Paths {
			paths++
			if p.Path != "/wechatpay/notify" || p.PathType != "Exact" {
				ps.add("ingress path %q (%s): want only /wechatpay/notify, Exact", p.Path, p.PathType)
			}
			b := p.Backend.Service
			if b.Name != s.Metadata.Name {
				ps.add("ingress backend service %q is not %q", b.Name, s.Metadata.Name)
			}
			matched := false
			for _, sp := range s.Spec.Ports {
				matched = matched || (b.Port.Name != "" && b.Port.Name == sp.Name) || (b.Port.Number != 0 && b.Port.Number == sp.Port)
			}
			if !matched {
				ps.add("ingress backend port %+v is not a port of service %s", b.Port, s.Metadata.Name)
			}
			if want := "https://" + r.Host + p.Path; cfg.Payments.WeChatPay.NotifyURL != want {
				ps.add("config: payments.wechatpay.notify_url %q; the Ingress serves %q", cfg.Payments.WeChatPay.NotifyURL, want)
			}
		}
	}
	if paths != 1 {
		ps.add("ingress: %d paths; want exactly /wechatpay/notify", paths)
	}

	// Who may connect: the admin listener listens on every interface (the
	// kubelet's probes, which NetworkPolicy does not govern, need it), so
	// without a policy every pod in the cluster reached /metrics and the
	// admin API's login. A NetworkPolicy selecting the pod admits the
	// notify port (the Ingress's backend) and the admin port from chosen
	// namespaces only, by port number (Calico mishandled the names of a
	// sidecar's ports), and no port that is no listener's.
	ps = append(ps, checkNetworkPolicy(m, pg, bot, adminPort, notifyPort)...)

	// Scaling out and shutting down.
	if d.Spec.Replicas > 1 && cfg.Store.Driver != "redis" {
		ps.add("%d replicas with store.driver %q: only redis is shared", d.Spec.Replicas, cfg.Store.Driver)
	}
	// Each replica's simulator is a WeChat Pay of its own: one replica
	// closes or queries another's order at a WeChat Pay that never saw it
	// (check-config only warns, and a warning passes).
	if d.Spec.Replicas > 1 && cfg.Payments.Backend != "wechatpay" {
		ps.add("%d replicas with payments.backend %q: each replica simulates a WeChat Pay of its own that does not see the others' orders; run one replica with it", d.Spec.Replicas, cfg.Payments.Backend)
	}
	// The embedded store is a file in the data directory: on an emptyDir
	// the orders, the audit chain and the generated user hash key went
	// with the pod at every rollout or eviction; and a rolling update
	// starts the new pod while the old one, holding the file's lock, is
	// kept until the new one is ready, which it never is (serve exits on
	// the lock): the rollout never finished.
	// A relative store.path (its default, data/paygate.db, among them)
	// starts at the container's working directory, the image's WORKDIR
	// unless the pod names another; the store makes the directories it
	// names, so any file under the data directory is on its volume.
	if cfg.Store.Driver == "embedded" {
		file, wd := cfg.Store.Path, pg.WorkingDir
		if wd == "" {
			wd = img.WorkDir
		}
		if !path.IsAbs(file) {
			file = path.Join("/", wd, file)
		}
		inData := len(img.Volumes) > 0 && strings.HasPrefix(path.Clean(file), strings.TrimSuffix(img.Volumes[0], "/")+"/")
		if dataVol == nil || dataVol.PersistentVolumeClaim == nil || !inData {
			ps.add("store.driver embedded at %s, not on a persistentVolumeClaim mounted at the data directory %v: the orders and the audit chain go with the pod", file, img.Volumes)
		}
		if d.Spec.Strategy.Type != "Recreate" {
			ps.add("store.driver embedded with strategy %q: a rolling update's new pod cannot open the file the old one holds locked, and the old one waits for it; want Recreate", d.Spec.Strategy.Type)
		}
	}
	// Several replicas: a PodDisruptionBudget keeps one serving while a
	// node is drained (an upgrade, an autoscaler): without one, both could
	// be evicted at once, the bot down and every WeChat Pay notification
	// refused until a replacement started.
	if n := d.Spec.Replicas; n > 1 {
		switch b := m.PDB; {
		case b == nil:
			ps.add("%d replicas and no PodDisruptionBudget: a node drain may evict them all at once", n)
		default:
			for k, v := range b.Spec.Selector.MatchLabels {
				if d.Spec.Template.Metadata.Labels[k] != v {
					ps.add("PodDisruptionBudget selector %s=%s does not select the pod", k, v)
				}
			}
			if len(b.Spec.Selector.MatchLabels) == 0 {
				ps.add("PodDisruptionBudget selects no pod")
			}
			switch {
			case b.Spec.MaxUnavailable != nil && b.Spec.MinAvailable == nil:
				if u, err := strconv.Atoi(string(*b.Spec.MaxUnavailable)); err != nil || u < 1 || u >= n {
					ps.add("PodDisruptionBudget maxUnavailable %q: want a number from 1 to %d, so one replica keeps serving and a drain can go on", *b.Spec.MaxUnavailable, n-1)
				}
			case b.Spec.MinAvailable != nil && b.Spec.MaxUnavailable == nil:
				if a, err := strconv.Atoi(string(*b.Spec.MinAvailable)); err != nil || a < 1 || a >= n {
					ps.add("PodDisruptionBudget minAvailable %q: want a number from 1 to %d, so one replica keeps serving and a drain can go on", *b.Spec.MinAvailable, n-1)
				}
			default:
				ps.add("PodDisruptionBudget: want exactly one of maxUnavailable and minAvailable")
			}
		}
	}
	if grace := pod.TerminationGracePeriodSeconds; float64(grace) <= (cfg.Server.ShutdownTimeout.D() + closeAfterDrain).Seconds() {
		ps.add("terminationGracePeriodSeconds %d does not cover server.shutdown_timeout %s and closing after it (%s)", grace, cfg.Server.ShutdownTimeout.D(), closeAfterDrain)
	}
	return ps, kc
}

func checkNetworkPolicy(m manifest, pg, bot *container, adminPort, notifyPort int) (ps problems) {
	np := m.NetPol
	if np == nil {
		ps.add("no NetworkPolicy: every pod in the cluster reaches the admin listener's port %d (/metrics, the admin API)", adminPort)
		return ps
	}
	labels := m.Deployment.Spec.Template.Metadata.Labels
	if len(np.Spec.PodSelector.MatchLabels) == 0 {
		ps.add("NetworkPolicy podSelector selects every pod of the namespace; want paygate's")
	}
	for k, v := range np.Spec.PodSelector.MatchLabels {
		if labels[k] != v {
			ps.add("NetworkPolicy podSelector %s=%s does not select the pod", k, v)
		}
	}
	if len(np.Spec.PolicyTypes) > 0 && !slices.Contains(np.Spec.PolicyTypes, "Ingress") {
		ps.add("NetworkPolicy policyTypes %q: without Ingress it limits no connection to the pod", np.Spec.PolicyTypes)
	}
	allowed := map[int]string{adminPort: "admin", notifyPort: "notify"}
	for _, c := range []*container{pg, bot} {
		for _, p := range c.Ports {
			if _, ok := allowed[p.ContainerPort]; !ok {
				allowed[p.ContainerPort] = c.Name + " " + p.Name
			}
		}
	}
	notifyOpen := false
	for i, r := range np.Spec.Ingress {
		if len(r.Ports) == 0 {
			ps.add("NetworkPolicy ingress[%d] names no port: it admits every port, the admin port %d among them", i, adminPort)
		}
		for _, p := range r.Ports {
			n, err := strconv.Atoi(string(p.Port))
			if err != nil {
				ps.add("NetworkPolicy ingress[%d] port %q by name: give the number (Calico mishandled a sidecar's port names)", i, p.Port)
				continue
			}
			if _, ok := allowed[n]; !ok {
				ps.add("NetworkPolicy ingress[%d] port %d is no listener's or container's port", i, n)
			}
			if p.Protocol != "" && p.Protocol != "TCP" {
				ps.add("NetworkPolicy ingress[%d] port %d protocol %s; the listeners are TCP", i, n, p.Protocol)
			}
			switch n {
			case notifyPort:
				notifyOpen = true
			case adminPort:
				if len(r.From) == 0 {
					ps.add("NetworkPolicy ingress[%d] admits the admin port %d from everywhere; want only a monitoring namespace", i, n)
				}
				for j, f := range r.From {
					if f.NamespaceSelector == nil || len(f.NamespaceSelector.MatchLabels) == 0 || f.IPBlock != nil {
						ps.add("NetworkPolicy ingress[%d].from[%d] admits the admin port %d from beyond a chosen namespace; want a namespaceSelector with labels", i, j, n)
					}
				}
			}
		}
	}
	if !notifyOpen {
		ps.add("NetworkPolicy does not admit the notify port %d: the Ingress could not deliver WeChat Pay's notifications", notifyPort)
	}
	return ps
}

func TestKubernetesManifest(t *testing.T) {
	ps, kc := checkKubernetes(readManifest(t), readImage(t), t.TempDir())
	ps.want(t, "kubernetes.yaml")
	if kc.file != "" {
		checkConfig(t, kc.file, kc.env)
	}
}

// TestKubernetesChecksCatch proves each check can fail: every case breaks the
// parsed manifest in one way and wants the problem named.
func TestKubernetesChecksCatch(t *testing.T) {
	pg := func(m *manifest) *container { c, _ := paygateContainer(&m.Deployment.Spec.Template.Spec); return c }
	cm := func(m *manifest, old, new string) {
		m.ConfigMap.Data["config.yaml"] = strings.Replace(m.ConfigMap.Data["config.yaml"], old, new, 1)
	}
	tests := []struct {
		name   string
		mutate func(*manifest)
		want   string
	}{
		{"readiness on the store", func(m *manifest) { pg(m).ReadinessProbe.HTTPGet.Path = "/readyz" }, "readinessProbe path"},
		{"readiness without httpGet", func(m *manifest) { pg(m).ReadinessProbe.HTTPGet = nil }, "no readinessProbe"},
		{"liveness on the wrong path", func(m *manifest) { pg(m).LivenessProbe.HTTPGet.Path = "/readyz" }, "livenessProbe path"},
		{"probe on the notify port", func(m *manifest) { pg(m).ReadinessProbe.HTTPGet.Port = "notify" }, "not the admin listener's port"},
		{"sidecar without restartPolicy", func(m *manifest) { pg(m).RestartPolicy = "" }, "would block the bot"},
		{"bot missing", func(m *manifest) { m.Deployment.Spec.Template.Spec.Containers = nil }, "no bot container"},
		{"ingress exposes everything", func(m *manifest) { m.Ingress.Spec.Rules[0].HTTP.Paths[0].Path = "/" }, "want only /wechatpay/notify"},
		{"ingress prefix match", func(m *manifest) { m.Ingress.Spec.Rules[0].HTTP.Paths[0].PathType = "Prefix" }, "want only /wechatpay/notify"},
		{"service targets admin", func(m *manifest) { m.Service.Spec.Ports[0].TargetPort = "admin" }, "not the notify listener's port"},
		{"service targets the sidecar's port by name", func(m *manifest) { m.Service.Spec.Ports[0].TargetPort = "notify" }, "by name"},
		{"notify on the main listener", func(m *manifest) { cm(m, "notify_listen: 0.0.0.0:8082", `notify_listen: ""`) }, "no notify_listen"},
		{"main listener on every interface", func(m *manifest) { cm(m, "listen: 127.0.0.1:8080", "listen: 0.0.0.0:8080") }, "127.0.0.1 only"},
		{"secret file outside the Secret", func(m *manifest) {
			cm(m, "/var/run/secrets/paygate/admin_token", "/etc/paygate/admin_token")
		}, "admin.token_file"},
		{"secret item missing", func(m *manifest) {
			v := &m.Deployment.Spec.Template.Spec.Volumes[1]
			v.Secret.Items = v.Secret.Items[1:]
		}, "clients[0].key_file"},
		{"notify_url not the ingress", func(m *manifest) { cm(m, "https://pay.example.com/", "https://other.example.com/") }, "notify_url"},
		{"embedded store with replicas", func(m *manifest) { cm(m, "driver: redis", "driver: embedded\n  path: /var/lib/paygate/paygate.db") }, "only redis is shared"},
		{"embedded store on an emptyDir", func(m *manifest) {
			cm(m, "driver: redis", "driver: embedded\n  path: /var/lib/paygate/paygate.db")
			m.Deployment.Spec.Replicas, m.Deployment.Spec.Strategy.Type = 1, "Recreate"
		}, "not on a persistentVolumeClaim"},
		{"embedded store rolled", func(m *manifest) {
			cm(m, "driver: redis", "driver: embedded\n  path: /var/lib/paygate/paygate.db")
			m.Deployment.Spec.Replicas = 1
			for i := range m.Deployment.Spec.Template.Spec.Volumes {
				if v := &m.Deployment.Spec.Template.Spec.Volumes[i]; v.EmptyDir != nil {
					v.EmptyDir, v.PersistentVolumeClaim = nil, &struct {
						ClaimName string `yaml:"claimName"`
					}{"paygate-data"}
				}
			}
		}, "want Recreate"},
		{"runs as root", func(m *manifest) { m.Deployment.Spec.Template.Spec.SecurityContext.RunAsUser = 0 }, "runAsUser"},
		{"config mount writable", func(m *manifest) { pg(m).VolumeMounts[0].ReadOnly = false }, "not readOnly"},
		{"no disruption budget", func(m *manifest) { m.PDB = nil }, "no PodDisruptionBudget"},
		{"disruption budget for other pods", func(m *manifest) { m.PDB.Spec.Selector.MatchLabels = map[string]string{"app": "other"} }, "does not select the pod"},
		{"disruption budget that lets every replica go", func(m *manifest) {
			two := intOrString("2")
			m.PDB.Spec.MaxUnavailable, m.PDB.Spec.MinAvailable = &two, nil
		}, "maxUnavailable"},
		{"short grace period", func(m *manifest) { m.Deployment.Spec.Template.Spec.TerminationGracePeriodSeconds = 30 }, "terminationGracePeriodSeconds"},
		{"no network policy", func(m *manifest) { m.NetPol = nil }, "no NetworkPolicy"},
		{"network policy for other pods", func(m *manifest) { m.NetPol.Spec.PodSelector.MatchLabels = map[string]string{"app": "other"} }, "NetworkPolicy podSelector"},
		{"network policy admits admin from everywhere", func(m *manifest) {
			for i := range m.NetPol.Spec.Ingress {
				m.NetPol.Spec.Ingress[i].From = nil
			}
		}, "admin port 8081 from everywhere"},
		{"network policy admits admin from an ip block", func(m *manifest) {
			for i := range m.NetPol.Spec.Ingress {
				for j := range m.NetPol.Spec.Ingress[i].From {
					m.NetPol.Spec.Ingress[i].From[j].NamespaceSelector = nil
				}
			}
		}, "beyond a chosen namespace"},
		{"network policy rule on every port", func(m *manifest) {
			for i := range m.NetPol.Spec.Ingress {
				m.NetPol.Spec.Ingress[i].Ports = nil
			}
		}, "names no port"},
		{"network policy port by name", func(m *manifest) { m.NetPol.Spec.Ingress[0].Ports[0].Port = "notify" }, "by name"},
		{"network policy on another port", func(m *manifest) { m.NetPol.Spec.Ingress[0].Ports[0].Port = "9999" }, "port 9999 is no listener's"},
		{"network policy shuts out notifications", func(m *manifest) { cm(m, "notify_listen: 0.0.0.0:8082", "notify_listen: 0.0.0.0:8083") }, "does not admit the notify port 8083"},
		{"config that does not load", func(m *manifest) { cm(m, "backend: wechatpay", "backend: alipay") }, "payments.backend"},
		{"simulator with replicas", func(m *manifest) { cm(m, "backend: wechatpay", "backend: simulator") }, "replicas with payments.backend"},
		{"secret written in the ConfigMap", func(m *manifest) {
			cm(m, "token_file: /var/run/secrets/paygate/admin_token", "token: literal-admin-token-0123456789")
		}, "not read from a file of Secret"},
		{"secret given as a pod env value", func(m *manifest) {
			cm(m, "secret_file: /var/run/secrets/paygate/webhook_secret", "secret: ${PAYGATE_WEBHOOK_SECRET}")
			e := pg(m).Env[0]
			e.Name, e.Value = "PAYGATE_WEBHOOK_SECRET", "literal-webhook-secret-0123456789"
			pg(m).Env = append(pg(m).Env, e)
		}, "not read from a file of Secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := readManifest(t)
			tt.mutate(&m)
			ps, _ := checkKubernetes(m, readImage(t), t.TempDir())
			if !ps.has(tt.want) {
				t.Errorf("got problems %q; want one containing %q", ps, tt.want)
			}
		})
	}
}

func TestKubernetesRejectsUnknownFields(t *testing.T) {
	data, err := os.ReadFile("kubernetes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), "readinessProbe:", "readinesProbe:", 1)
	if bad == string(data) {
		t.Fatal("mutation did not apply")
	}
	if _, err := parseManifest([]byte(bad)); err == nil || !strings.Contains(err.Error(), "readinesProbe") {
		t.Errorf("got %v; want an error naming readinesProbe", err)
	}
}

// TestKubernetesEmbeddedStoreOnItsClaim: the manifest as its comment says to
// run the embedded store (one replica, Recreate, the data directory on a
// PersistentVolumeClaim) passes with the store's file anywhere in the data
// directory: store.path left to its default (data/paygate.db, relative to
// the image's WORKDIR, the data directory), or in a subdirectory of it,
// which the store creates. A file outside the claim is still refused.
func TestKubernetesEmbeddedStoreOnItsClaim(t *testing.T) {
	embedded := func(t *testing.T, m *manifest, store string) {
		t.Helper()
		cfg := m.ConfigMap.Data["config.yaml"]
		i := strings.Index(cfg, "\nstore:\n")
		j := strings.Index(cfg, "\nproviders:\n")
		if i < 0 || j < i {
			t.Fatal("no store section in the ConfigMap")
		}
		m.ConfigMap.Data["config.yaml"] = cfg[:i] + "\nstore:\n  driver: embedded\n" + store + cfg[j:]
		m.Deployment.Spec.Replicas, m.Deployment.Spec.Strategy.Type = 1, "Recreate"
		for i := range m.Deployment.Spec.Template.Spec.Volumes {
			if v := &m.Deployment.Spec.Template.Spec.Volumes[i]; v.EmptyDir != nil {
				v.EmptyDir, v.PersistentVolumeClaim = nil, &struct {
					ClaimName string `yaml:"claimName"`
				}{"paygate-data"}
			}
		}
	}
	for _, tc := range []struct {
		name, store string
		want        string // a problem wanted; "" for none
	}{
		{"in the data directory", "  path: /var/lib/paygate/paygate.db\n", ""},
		{"in a subdirectory of it", "  path: /var/lib/paygate/store/paygate.db\n", ""},
		{"the default path", "", ""},
		{"relative, in the data directory", "  path: paygate.db\n", ""},
		{"outside the claim", "  path: /tmp/paygate.db\n", "not on a persistentVolumeClaim"},
		{"relative, out of the data directory", "  path: ../paygate.db\n", "not on a persistentVolumeClaim"},
		{"beside the data directory", "  path: /var/lib/paygate-old/paygate.db\n", "not on a persistentVolumeClaim"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := readManifest(t)
			embedded(t, &m, tc.store)
			ps, _ := checkKubernetes(m, readImage(t), t.TempDir())
			if tc.want == "" && len(ps) > 0 {
				t.Errorf("the embedded store as the manifest says to run it: problems %q; want none", ps)
			}
			if tc.want != "" && !ps.has(tc.want) {
				t.Errorf("got problems %q; want one containing %q", ps, tc.want)
			}
		})
	}
}
