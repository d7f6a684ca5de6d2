package emulator_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
)

// This file checks, for every action of the descriptors whose answer carries an id (job_id, job_ids,
// <x>_id, <x>_ids, or a list of ids), that a valid request answers every such id non-empty, and that
// a resource the answer names for the first time (created) is then listed by its Describe action and
// deleted by its Delete action.

// makeModelled makes one resource of a kind that hand-written handlers model, ready for any action
// on it (its jobs finished); ok is false for other kinds.
func makeModelled(f *fixture, kind string) (id string, ok bool) {
	defer func() {
		if ok {
			f.finish()
		}
	}()
	switch kind {
	case "instance":
		return f.running(), true
	case "volume":
		return strs(f.c.ok("CreateVolumes", "size", "10")["volumes"])[0], true
	case "eip":
		return strs(f.c.ok("AllocateEips", "bandwidth", "2")["eips"])[0], true
	case "vxnet":
		return strs(f.c.ok("CreateVxnets", "vxnet_type", "1")["vxnets"])[0], true
	case "security_group":
		return f.c.ok("CreateSecurityGroup")["security_group_id"].(string), true
	case "security_group_rule":
		sg, _ := makeModelled(f, "security_group")
		return strs(f.c.ok("AddSecurityGroupRules", "security_group", sg, "rules.1.protocol", "tcp",
			"rules.1.priority", "1")["security_group_rules"])[0], true
	case "keypair":
		return f.c.ok("CreateKeyPair")["keypair_id"].(string), true
	case "snapshot":
		v, _ := makeModelled(f, "volume")
		return strs(f.c.ok("CreateSnapshots", "resources.1", v)["snapshots"])[0], true
	case "image":
		inst := f.running()
		f.c.ok("StopInstances", "instances.1", inst)
		f.finish()
		return f.c.ok("CaptureInstance", "instance", inst)["image_id"].(string), true
	case "tag":
		return f.c.ok("CreateTag", "tag_name", "t")["tag_id"].(string), true
	case "router":
		return strs(f.c.ok("CreateRouters")["routers"])[0], true
	case "loadbalancer":
		eip, _ := makeModelled(f, "eip")
		return f.c.ok("CreateLoadBalancer", "eips.1", eip)["loadbalancer_id"].(string), true
	case "loadbalancer_listener":
		lb, _ := makeModelled(f, "loadbalancer")
		return strs(f.c.ok("AddLoadBalancerListeners", "loadbalancer", lb, "listeners.1.listener_port", "80",
			"listeners.1.listener_protocol", "http")["loadbalancer_listeners"])[0], true
	case "loadbalancer_backend":
		l, _ := makeModelled(f, "loadbalancer_listener")
		return strs(f.c.ok("AddLoadBalancerBackends", "loadbalancer_listener", l, "backends.1.resource_id", f.running(),
			"backends.1.port", "80")["loadbalancer_backends"])[0], true
	case "job":
		return f.c.ok("CreateVolumes", "size", "10")["job_id"].(string), true
	}
	return "", false
}

// sampleValues are valid values of parameters that are no resource ids.
var sampleValues = map[string]string{
	"image_id": "centos7x64d", "instance_type": "c1m1", "login_mode": "passwd", "login_passwd": "Passw0rd1",
	"size": "10", "bandwidth": "2", "vxnet_type": "1", "tag_name": "t", "resource_type": "instance",
	"resource_id": "", "ipset_type": "0", "val": "10.0.0.1", "cache_type": "redis3.0.5", "cache_size": "1",
	"node_count": "1", "billing_mode": "traffic", "ip_network": "192.168.1.0/24", "loadbalancer_type": "1",
	"action": "accept", "protocol": "tcp", "priority": "1", "listener_protocol": "http", "backend_protocol": "http",
	"listener_port": "80", "port": "80", "balance_mode": "roundrobin",
}

// alsoRequired are parameters that the spec leaves optional but the modelled handler needs, as
// QingCloud does (a password for login_mode passwd, the load balancer of a listener).
var alsoRequired = map[string][]string{
	"RunInstances":             {"login_passwd", "instance_type"},
	"ResizeInstances":          {"instance_type"},
	"CreateLoadBalancer":       {"eips"},
	"AddLoadBalancerListeners": {"loadbalancer", "listeners"},
	"ResizeLoadBalancers":      {"loadbalancer_type", "loadbalancers"},
	// The backend to change (a rule of the backends' store row).
	"ModifyLoadBalancerBackendAttributes": {"loadbalancer_backend"},
}

// idTest drives one action with valid parameters.
type idTest struct {
	f     *fixture
	t     *testing.T
	reg   map[string]registryAction
	kinds map[string]api.ResourceKind // by kind name
	given map[string]bool             // ids the request named
	sent  map[string]string           // the parameters of the last call
	body  []byte                      // the answer of the last call
	depth int
}

// kindOfParam returns the kind a request parameter names: its id list parameter, the kind's name, or
// the kind's name plus _id.
func (it *idTest) kindOfParam(name string, list bool) (api.ResourceKind, bool) {
	for _, k := range it.kinds {
		// A singular parameter named the id list (mongos of StartMongos) is a spec quirk: one id.
		if list && (name == k.IDParam || name == k.Name+"_ids") || !list && (name == k.Name || name == k.Name+"_id" || name == k.IDParam) {
			return k, true
		}
	}
	if name == "resources" || name == "resource" {
		return it.kinds["volume"], true
	}
	return api.ResourceKind{}, false
}

// make returns a fresh resource of kind k: a modelled maker, or the first unmodelled create action
// whose answer names the kind.
func (it *idTest) make(k api.ResourceKind) string {
	it.t.Helper()
	if id, ok := makeModelled(it.f, k.Name); ok {
		return id
	}
	if it.depth > 3 {
		it.t.Fatalf("no way to make a %s", k.Name)
	}
	names := make([]string, 0, len(it.reg))
	for name := range it.reg {
		if strings.HasPrefix(name, "Create") || strings.HasPrefix(name, "Add") || strings.HasPrefix(name, "Upload") || strings.HasPrefix(name, "Associate") {
			names = append(names, name)
		}
	}
	// Create actions first, then the others; in name order.
	slices.SortFunc(names, func(a, b string) int {
		if ca, cb := strings.HasPrefix(a, "Create"), strings.HasPrefix(b, "Create"); ca != cb {
			if ca {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, name := range names {
		ra := it.reg[name]
		fd := answerFieldOf(ra.out, k)
		if fd == nil || it.requires(ra.in, k) {
			continue
		}
		sub := &idTest{f: it.f, t: it.t, reg: it.reg, kinds: it.kinds, given: map[string]bool{}, depth: it.depth + 1}
		out := sub.call(name, ra, nil)
		if code(out) != 0 {
			continue
		}
		it.f.finish()
		return answerIDs(out, fd, k)[0]
	}
	return "x-nomaker1" // no action creates the kind: the emulator does not check its ids
}

// answerFieldOf returns the field of an answer that holds ids of kind k: a string, a list of
// strings, or a list of objects with a <kind>_id (nics of CreateNics).
func answerFieldOf(out protoreflect.MessageDescriptor, k api.ResourceKind) protoreflect.FieldDescriptor {
	for i := 0; i < out.Fields().Len(); i++ {
		fd := out.Fields().Get(i)
		name := fieldWireName(fd)
		if fd.IsList() && fd.Kind() == protoreflect.MessageKind {
			if idf := fd.Message().Fields().ByName(protoreflect.Name(k.Name + "_id")); idf != nil && !idf.IsList() {
				return fd
			}
			continue
		}
		if fd.Kind() != protoreflect.StringKind {
			continue
		}
		if !fd.IsList() && (name == k.Name+"_id" || name == k.Name) || fd.IsList() && (name == k.IDParam || name == k.Name+"_ids") {
			return fd
		}
	}
	return nil
}

// answerIDs returns the ids of kind k that an answer field holds (the <kind>_id of each object of a
// list of objects).
func answerIDs(out map[string]any, fd protoreflect.FieldDescriptor, k api.ResourceKind) []string {
	v := out[fieldWireName(fd)]
	switch {
	case fd.Kind() == protoreflect.MessageKind:
		objs, _ := v.([]any)
		ids := make([]string, len(objs))
		for i, o := range objs {
			m, _ := o.(map[string]any)
			ids[i], _ = m[k.Name+"_id"].(string)
		}
		return ids
	case fd.IsList():
		return strs(v)
	}
	if s, _ := v.(string); s != "" {
		return []string{s}
	}
	return nil
}

// names reports whether a request has a parameter for resources of kind k.
func (it *idTest) names(in protoreflect.MessageDescriptor, k api.ResourceKind) bool {
	for i := 0; i < in.Fields().Len(); i++ {
		fd := in.Fields().Get(i)
		if kk, ok := it.kindOfParam(fieldWireName(fd), fd.IsList()); ok && kk.Name == k.Name {
			return true
		}
	}
	return false
}

// requires reports whether a request needs a resource of kind k.
func (it *idTest) requires(in protoreflect.MessageDescriptor, k api.ResourceKind) bool {
	for i := 0; i < in.Fields().Len(); i++ {
		fd := in.Fields().Get(i)
		if kk, ok := it.kindOfParam(fieldWireName(fd), fd.IsList()); ok && required(fd) && kk.Name == k.Name {
			return true
		}
	}
	return false
}

// call sends action with every required parameter set: the fixed values, resource ids made for the
// purpose, sample values otherwise.
func (it *idTest) call(name string, ra registryAction, fixed map[string]string) map[string]any {
	it.t.Helper()
	var kv []string
	for k, v := range fixed {
		kv = append(kv, k, v)
	}
	for i := 0; i < ra.in.Fields().Len(); i++ {
		fd := ra.in.Fields().Get(i)
		wn := fieldWireName(fd)
		if !required(fd) && !slices.Contains(alsoRequired[name], wn) || fd.Name() == "zone" {
			continue
		}
		if _, ok := fixed[wn]; ok {
			continue
		}
		if _, ok := fixed[wn+".1"]; ok {
			continue
		}
		if v, ok := sampleValues[wn]; ok && !fd.IsList() {
			kv = append(kv, wn, v)
			continue
		}
		if fd.Kind() == protoreflect.StringKind {
			if k, ok := it.kindOfParam(wn, fd.IsList()); ok {
				id := it.make(k)
				it.given[id] = true
				if fd.IsList() {
					wn += ".1"
				}
				kv = append(kv, wn, id)
				continue
			}
		}
		// Sample values of a list of objects: a known value for each known field name.
		sample := sampleKV(fd)
		for i := 0; i+1 < len(sample); i += 2 {
			if v, ok := sampleValues[sample[i][strings.LastIndex(sample[i], ".")+1:]]; ok && strings.Contains(sample[i], ".") {
				sample[i+1] = v
			}
		}
		kv = append(kv, sample...)
	}
	c := it.f.c
	if ra.in.Fields().ByName("zone") == nil {
		c = it.f.c.with(func(c *client) { c.zone = "" })
	}
	it.sent = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		it.sent[kv[i]] = kv[i+1]
	}
	resp, body, err := c.send(c.params(name, kv...))
	if err != nil {
		it.t.Fatalf("%s: %v", name, err)
	}
	var out map[string]any
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &out) != nil {
		it.t.Fatalf("%s: HTTP %d %q %s", name, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	it.body = body
	return out
}

// sampleKV returns key/value pairs that set fd to a valid sample (as minimal does for required
// fields).
func sampleKV(fd protoreflect.FieldDescriptor) []string {
	name := fieldWireName(fd)
	switch {
	case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
		var kv []string
		sub := fd.Message().Fields()
		for k := 0; k < sub.Len(); k++ {
			if sf := sub.Get(k); !sf.IsList() && sf.Kind() != protoreflect.MessageKind {
				kv = append(kv, name+".1."+fieldWireName(sf), scalarSample(sf))
			}
		}
		return kv
	case fd.IsList():
		return []string{name + ".1", scalarSample(fd)}
	case fd.Kind() == protoreflect.MessageKind:
		return []string{name, "{}"}
	}
	return []string{name, scalarSample(fd)}
}

// idAnswerFields returns the fields of an answer that hold ids: job_id, <x>_id, <x>_ids, a list named
// a kind's id parameter or a list parameter of the request (the ids acted on), or any list of
// strings of an action that creates.
func (it *idTest) idAnswerFields(ra registryAction) []protoreflect.FieldDescriptor {
	var ids []protoreflect.FieldDescriptor
	for i := 0; i < ra.out.Fields().Len(); i++ {
		fd := ra.out.Fields().Get(i)
		name := fieldWireName(fd)
		if fd.IsList() && fd.Kind() == protoreflect.MessageKind && creates(ra.name) {
			// A list of objects naming resources of a kind the request names none of: created ones.
			for _, k := range it.kinds {
				if answerFieldOf(ra.out, k) == fd && !it.requires(ra.in, k) && !it.names(ra.in, k) {
					ids = append(ids, fd)
					break
				}
			}
			continue
		}
		if fd.Kind() != protoreflect.StringKind {
			continue
		}
		_, isKind := it.kindOfParam(name, true)
		_, isOne := it.kindOfParam(name, false)
		in := ra.in.Fields().ByName(protoreflect.Name(name))
		if (strings.HasSuffix(name, "_id") || isOne) && !fd.IsList() || strings.HasSuffix(name, "_ids") ||
			fd.IsList() && (isKind || in != nil && in.IsList() || creates(ra.name)) {
			ids = append(ids, fd)
		}
	}
	return ids
}

// creates reports whether an action's name says it creates resources.
func creates(action string) bool {
	for _, v := range []string{"Create", "Add", "Upload", "Allocate", "Clone", "Associate", "Deploy", "Run", "Capture"} {
		if strings.HasPrefix(action, v) {
			return true
		}
	}
	return false
}

// stateBound are actions whose valid request needs more than a fresh resource (a resource in a
// particular relation or state); their ids are checked by the lifecycle tests named.
var stateBound = map[string]string{
	"AddLoadBalancerBackends":        "TestLoadBalancerLifecycle (backends name an instance)",
	"CaptureInstance":                "makeModelled(image) here (needs a stopped instance)",
	"CaptureInstanceFromSnapshot":    "TestSnapshotLifecycle (needs an instance snapshot)",
	"CeaseInstances":                 "TestInstanceWrongState (needs a terminated instance)",
	"DetachKeyPairs":                 "TestKeyPairLifecycle (needs an attached key pair)",
	"DetachVolumes":                  "TestVolumeLifecycle (needs an attached volume)",
	"DissociateEips":                 "TestEIPLifecycle (needs an associated EIP)",
	"DissociateEipsFromLoadBalancer": "TestLoadBalancerLifecycle (needs an associated EIP)",
	"DetachNics":                     "TestNicAttachDetach (needs an attached NIC)",
	"LeaveRouter":                    "TestRouterLifecycle (needs a joined vxnet)",
	"LeaveVxnet":                     "TestVxnetLifecycle (needs a joined instance)",
	"PowerOnRouters":                 "TestRouterLifecycle (needs a powered-off router)",
	"ResizeInstances":                "TestInstanceLifecycle (needs a stopped instance)",
	"StartInstances":                 "TestInstanceLifecycle (needs a stopped instance)",
	"StartLoadBalancers":             "TestLoadBalancerLifecycle (needs a stopped load balancer)",
}

func TestEveryIDAnswered(t *testing.T) {
	f := newFixture(t, nil)
	reg := registryActions(t)
	kinds := map[string]api.ResourceKind{}
	for _, k := range api.ResourceKinds() {
		if _, dup := kinds[k.Name]; !dup {
			kinds[k.Name] = k
		}
	}
	names := make([]string, 0, len(reg))
	for name := range reg {
		names = append(names, name)
	}
	slices.Sort(names)
	checked, created, withIDs := 0, 0, 0
	for _, name := range names {
		ra := reg[name]
		it := &idTest{f: f, t: t, reg: reg, kinds: kinds, given: map[string]bool{"vxnet-0": true}}
		ids := it.idAnswerFields(ra)
		if len(ids) == 0 {
			continue
		}
		withIDs++
		if stateBound[name] != "" {
			continue
		}
		f.emu.Reset()
		out := it.call(name, ra, nil)
		sent := it.sent
		if code(out) != 0 {
			t.Errorf("%s: ret_code %v: %v", name, out["ret_code"], out["message"])
			continue
		}
		checked++
		for _, fd := range ids {
			wn := fieldWireName(fd)
			var k api.ResourceKind
			found := false
			for _, kk := range kinds {
				if answerFieldOf(ra.out, kk) == fd {
					k, found = kk, true
				}
			}
			got := answerIDs(out, fd, k)
			if wn == "job_id" && name == "CreateSnapshots" { // a list in production
				got = strs(out[wn])
			}
			if len(got) == 0 || slices.Contains(got, "") {
				t.Errorf("%s: %s = %#v, want an id", name, wn, out[wn])
				continue
			}
			if !found || !creates(name) || wn == "job_id" || it.given[got[0]] {
				continue
			}
			// A new id of a kind with a Describe action: it is listed, then deletable.
			created++
			f.finish()
			// The parameters of the creating request that the Describe and Delete requests require too
			// (the router of a router static) are sent again.
			again := func(action string) map[string]string {
				fixed := map[string]string{k.IDParam + ".1": got[0]}
				in := reg[action].in
				for i := 0; i < in.Fields().Len(); i++ {
					fd := in.Fields().Get(i)
					if v, ok := sent[fieldWireName(fd)]; ok && required(fd) {
						fixed[fieldWireName(fd)] = v
					}
				}
				return fixed
			}
			listed := it.call(k.Action, reg[k.Action], again(k.Action))
			if code(listed) != 0 || len(set(t, listed, k.SetField)) != 1 {
				t.Errorf("%s created %s %s, but %s lists %v", name, k.Name, got[0], k.Action, listed)
				continue
			}
			del := "Delete" + strings.TrimPrefix(k.Action, "Describe")
			if _, ok := reg[del]; !ok {
				continue
			}
			if out := it.call(del, reg[del], again(del)); code(out) != 0 {
				t.Errorf("%s created %s %s, but %s refuses it: %v", name, k.Name, got[0], del, out["message"])
			}
		}
	}
	t.Logf("%d actions with ids checked, %d created resources described and deleted", checked, created)
	if checked != withIDs-len(stateBound) || created < 30 {
		t.Fatalf("%d of %d actions with ids checked (%d state-bound), %d created resources", checked, withIDs, len(stateBound), created)
	}
}
