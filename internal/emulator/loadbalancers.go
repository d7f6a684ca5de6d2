package emulator

import (
	"cmp"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

func init() {
	register("CreateLoadBalancer", createLoadBalancer)
	register("AssociateEipsToLoadBalancer", associateEipsToLoadBalancer)
	register("DissociateEipsFromLoadBalancer", dissociateEipsFromLoadBalancer)
	register("AddLoadBalancerListeners", addLoadBalancerListeners)
	register("AddLoadBalancerBackends", addLoadBalancerBackends)
}

// loadbalancerRow is the generic store's row of load balancers (DescribeLoadBalancers, the lifecycle
// verbs and ModifyLoadBalancerAttributes are answered there): their EIPs and, verbose, listeners are
// relations; Update applies the listener and backend changes (is_applied), Resize changes the type,
// Delete frees the EIPs, listeners and backends. Statuses: pending, active, stopped, suspended,
// deleted, ceased.
var loadbalancerRow = kindRow{prefix: "lb", describe: describeLB, verbs: map[string]verbRule{
	"Delete": {from: []string{"active", "stopped"},
		done: func(a *account, _ *request, s *stored) { a.releaseLB(s) }},
	"Start": {from: []string{"stopped"}},
	"Stop":  {from: []string{"active"}},
	"Update": {from: []string{"active"},
		done: func(_ *account, _ *request, s *stored) { lbMsg(s).IsApplied = proto.Int32(1) }},
	"Resize": {from: []string{"active", "stopped"}, transition: "updating",
		check: func(_ *account, r *request, _ *stored) *apiError {
			if !r.has("loadbalancer_type") {
				return errMissing("loadbalancer_type")
			}
			_, err := lbType(r, 0)
			return err
		},
		done: func(_ *account, r *request, s *stored) {
			t, _ := lbType(r, 0)
			lbMsg(s).LoadbalancerType = proto.Int32(int32(t))
		}},
	"Modify": {check: func(a *account, r *request, s *stored) *apiError {
		if id := strings.TrimSpace(r.str("security_group")); id != "" {
			_, err := a.findSecurityGroup(r, id)
			return err
		}
		return nil
	}, done: func(_ *account, r *request, s *stored) {
		if strings.TrimSpace(r.str("security_group")) != "" {
			lbMsg(s).IsApplied = proto.Int32(0)
		}
		if ip := strings.TrimSpace(r.str("private_ip")); ip != "" {
			lbMsg(s).PrivateIps = []string{ip}
		}
	}},
}}

// lbMsg returns the item message of a stored load balancer.
func lbMsg(s *stored) *iaasv1.Loadbalancer { return s.msg.(*iaasv1.Loadbalancer) }

// loadbalancers returns the load balancers of the account by id.
func (a *account) loadbalancers() map[string]*stored { return a.storeNamed("loadbalancer") }

// describeLB adds to a described load balancer its EIPs and, verbose, its listeners with their
// backends.
func describeLB(a *account, r *request, s *stored, out *object) {
	eips := []any{}
	for _, e := range a.lbEipsOf(s) {
		eips = append(eips, map[string]any{"eip_id": e.id, "eip_name": e.name, "eip_addr": eipMsg(e).GetEipAddr()})
	}
	out.set("eips", eips)
	if v, _ := r.integer("verbose", 0); v != 0 {
		if ls := a.ofParent("loadbalancer_listener", "loadbalancer_id", s.id); len(ls) > 0 {
			out.set("listeners", a.renderListeners(ls))
		}
	}
}

// lbEipsOf returns the EIPs associated (or associating) with a load balancer, in association order
// (its eips hold their ids; unlinkEip removes them).
func (a *account) lbEipsOf(lb *stored) []*stored {
	var l []*stored
	for _, x := range lbMsg(lb).Eips {
		if e := a.storeNamed("eip")[x.GetEipId()]; e != nil {
			l = append(l, e)
		}
	}
	return l
}

// dropLBEip removes an EIP from the EIPs of a load balancer (for unlinkEip).
func (a *account) dropLBEip(lbID, eipID string) {
	if lb := a.loadbalancers()[lbID]; lb != nil {
		lbMsg(lb).Eips = slices.DeleteFunc(lbMsg(lb).Eips, func(x *iaasv1.Eip) bool { return x.GetEipId() == eipID })
	}
}

func lbType(r *request, def int) (int, *apiError) {
	t, err := r.integer("loadbalancer_type", def)
	if err != nil {
		return 0, err
	}
	if t < 0 || t > 5 {
		return 0, errInvalid("parameter [loadbalancer_type] should be between 0 and 5, got [%d]", t)
	}
	return t, nil
}

// lbEips looks up eips.N that must be available.
func (a *account) lbEips(r *request, required bool) ([]*stored, *apiError) {
	idl := r.list("eips")
	if required && len(idl) == 0 {
		return nil, errMissing("eips.1")
	}
	eips, err := lookup(r, a.eips(), idl)
	if err != nil {
		return nil, err
	}
	return eips, nil
}

// associateLBEips links available eips to lb with the job j.
func (a *account) associateLBEips(lb *stored, eips []*stored, j *job) {
	for i, e := range eips {
		a.linkEip(e, "loadbalancer", lb.id, lb.name)
		lbMsg(lb).Eips = append(lbMsg(lb).Eips, &iaasv1.Eip{EipId: proto.String(e.id)})
		a.begin(&e.base, j, i, len(eips), op{transition: "associating", to: "associated", undo: func() { a.unlinkEip(e) }},
			a.remover(e))
	}
}

func createLoadBalancer(a *account, r *request) (result, *apiError) {
	typ, err := lbType(r, 0)
	if err != nil {
		return nil, err
	}
	nodes, _ := r.integer("node_count", 2) // its syntax, and that of the other integers, was checked by validate
	eips, err := a.lbEips(r, false)
	if err != nil {
		return nil, err
	}
	vxID := strings.TrimSpace(r.str("vxnet"))
	if len(eips) == 0 && vxID == "" {
		return nil, errMissing("eips.1")
	}
	if vxID != "" {
		if _, err := a.findVxnet(r, vxID); err != nil {
			return nil, err
		}
	}
	for _, e := range eips {
		if err := e.need("associated", "available"); err != nil {
			return nil, err
		}
	}
	sgID := a.defaultSGs[a.createZone(r)]
	if id := strings.TrimSpace(r.str("security_group")); id != "" {
		sg, err := a.findSecurityGroup(r, id)
		if err != nil {
			return nil, err
		}
		sgID = sg.id
	}
	k := storeKinds()["loadbalancer"]
	lb := &stored{base: a.newBase(r, k.Name, k.prefix, r.str("loadbalancer_name"), "pending"), kind: k}
	m := &iaasv1.Loadbalancer{LoadbalancerType: proto.Int32(int32(typ)), VxnetId: proto.String(vxID),
		SecurityGroupId: proto.String(sgID), NodeCount: proto.Int32(int32(nodes)), IsApplied: proto.Int32(1)}
	if ip := strings.TrimSpace(r.str("private_ip")); ip != "" {
		m.PrivateIps = []string{ip}
	} else if v, _ := a.findVxnet(r, vxID); vxID != "" && v != nil {
		if ip := a.allocIP(v); ip != "" {
			m.PrivateIps = []string{ip}
		}
	}
	lb.msg = m
	a.loadbalancers()[lb.id] = lb
	j := a.newJob(r, append([]string{lb.id}, ids(eips)...))
	a.begin(&lb.base, j, 0, 1, op{transition: "creating", to: "active", failTo: "ceased",
		undo: func() { a.releaseLB(lb) }}, a.remover(lb))
	a.associateLBEips(lb, eips, j)
	return result{"loadbalancer_id": lb.id, "job_id": j.id}, nil
}

// releaseLB frees the eips, listeners and backends of a deleted load balancer.
func (a *account) releaseLB(lb *stored) {
	for _, e := range a.lbEipsOf(lb) {
		a.unlinkEip(e)
		if e.status == "associated" {
			e.status, e.statusTime = "available", lb.statusTime
		}
	}
	for _, kind := range []string{"loadbalancer_listener", "loadbalancer_backend"} {
		for _, x := range a.ofParent(kind, "loadbalancer_id", lb.id) {
			delete(a.storeNamed(kind), x.id)
		}
	}
}

func lbAndEips(a *account, r *request) (*stored, []*stored, *apiError) {
	id, err := r.required("loadbalancer")
	if err != nil {
		return nil, nil, err
	}
	eips, err := a.lbEips(r, true)
	if err != nil {
		return nil, nil, err
	}
	lb, err := lookupOne(r, a.loadbalancers(), id)
	if err != nil {
		return nil, nil, err
	}
	if err := lb.need("changed", "active", "stopped"); err != nil {
		return nil, nil, err
	}
	return lb, eips, nil
}

func associateEipsToLoadBalancer(a *account, r *request) (result, *apiError) {
	return lbEipsAction(a, r, true)
}

func dissociateEipsFromLoadBalancer(a *account, r *request) (result, *apiError) {
	return lbEipsAction(a, r, false)
}

// lbEipsAction associates available EIPs with a load balancer, or dissociates EIPs associated with
// it, under one job during which the load balancer is updating.
func lbEipsAction(a *account, r *request, associate bool) (result, *apiError) {
	lb, eips, err := lbAndEips(a, r)
	if err != nil {
		return nil, err
	}
	for _, e := range eips {
		if associate {
			err = e.need("associated", "available")
		} else if err = e.need("dissociated", "associated"); err == nil && eipMsg(e).GetResource().GetResourceId() != lb.id {
			err = errDenied("eip [%s] is not associated with loadbalancer [%s]", e.id, lb.id)
		}
		if err != nil {
			return nil, err
		}
	}
	j := a.newJob(r, append([]string{lb.id}, ids(eips)...))
	a.begin(&lb.base, j, 0, 1, op{transition: "updating"}, a.remover(lb))
	if associate {
		a.associateLBEips(lb, eips, j)
		return result{"job_id": j.id}, nil
	}
	for i, e := range eips {
		a.begin(&e.base, j, i, len(eips), op{transition: "dissociating", to: "available", ok: func() { a.unlinkEip(e) }},
			a.remover(e))
	}
	return result{"job_id": j.id}, nil
}

// Listeners and backends are kinds of the generic store too (DescribeLoadBalancerListeners and
// ...Backends, Delete... and Modify...Attributes are answered there, with the hooks of their rows
// below); what is relational is the load balancer a listener belongs to, the listener a backend
// belongs to, and is_applied, which every change of them clears until UpdateLoadBalancers.

// listenerRow is the generic store's row of listeners: verbose, they embed their backends; a deleted
// listener takes its backends with it.
var listenerRow = kindRow{prefix: "lbl",
	describe: func(a *account, r *request, s *stored, out *object) {
		if v, _ := r.integer("verbose", 0); v != 0 {
			out.set("backends", a.renderBackends(a.ofParent("loadbalancer_backend", "loadbalancer_listener_id", s.id)))
		}
	},
	verbs: map[string]verbRule{
		"Delete": {done: func(a *account, _ *request, s *stored) {
			for _, b := range a.ofParent("loadbalancer_backend", "loadbalancer_listener_id", s.id) {
				delete(a.storeNamed("loadbalancer_backend"), b.id)
			}
			a.unapplyLB(s)
		}},
		"Modify": {check: func(_ *account, r *request, _ *stored) *apiError {
			_, err := balanceMode(r.str("balance_mode"), "balance_mode")
			return err
		}, done: func(a *account, r *request, s *stored) {
			if certs := r.list("server_certificate_id"); len(certs) > 0 {
				s.setStrs("server_certificate_id", certs)
			}
			a.unapplyLB(s)
		}},
	}}

// backendRow is the generic store's row of backends. A backend's own status is "" or, once
// ModifyLoadBalancerBackendAttributes disabled it, "disabled"; it is answered active when it is
// enabled and its instance runs, down otherwise.
var backendRow = kindRow{prefix: "lbb", statusless: true,
	describe: func(a *account, _ *request, s *stored, out *object) { out.set("status", a.backendStatus(s)) },
	verbs: map[string]verbRule{
		"Delete": {done: func(a *account, _ *request, s *stored) { a.unapplyLB(s) }},
		"Modify": {done: func(a *account, r *request, s *stored) {
			if d, _ := r.integer("disabled", -1); d >= 0 {
				s.status = map[bool]string{true: "disabled"}[d != 0]
			}
			a.unapplyLB(s)
		}},
	}}

// ofParent returns the items of a kind whose parent field names id (the listeners of a load
// balancer, the backends of a listener), newest first.
func (a *account) ofParent(kind, field, id string) []*stored {
	return filterSorted(a.storeNamed(kind), func(s *stored) bool { return s.str(field) == id })
}

// unapplyLB clears is_applied of the load balancer of a listener or backend that changed.
func (a *account) unapplyLB(s *stored) {
	if lb := a.loadbalancers()[s.str("loadbalancer_id")]; lb != nil {
		lbMsg(lb).IsApplied = proto.Int32(0)
	}
}

func (a *account) backendStatus(b *stored) string {
	if inst := a.instances()[b.str("resource_id")]; inst != nil && inst.status == "running" && b.status == "" {
		return "active"
	}
	return "down"
}

// renderListeners renders listeners with their backends, for a verbose Describe.
func (a *account) renderListeners(ls []*stored) []any {
	out := make([]any, len(ls))
	for i, l := range ls {
		m := a.renderStored(l)
		m.set("backends", a.renderBackends(a.ofParent("loadbalancer_backend", "loadbalancer_listener_id", l.id)))
		out[i] = m
	}
	return out
}

func (a *account) renderBackends(bs []*stored) []any {
	out := make([]any, len(bs))
	for i, b := range bs {
		m := a.renderStored(b)
		m.set("status", a.backendStatus(b))
		out[i] = m
	}
	return out
}

var listenerProtocols = []string{"http", "https", "tcp", "udp", "ssl"}

// balanceMode checks a balance mode (roundrobin when empty).
func balanceMode(v, param string) (string, *apiError) {
	switch v = strings.TrimSpace(v); v {
	case "":
		return "roundrobin", nil
	case "roundrobin", "leastconn", "source":
		return v, nil
	}
	return "", errInvalid("parameter [%s] should be roundrobin, leastconn or source, got [%s]", param, clip(v))
}

// child returns a new listener or backend of parent (in its zone) made by r.
func (a *account) child(r *request, kind, name string, parent *stored, msg proto.Message) *stored {
	k := storeKinds()[kind]
	s := &stored{base: a.newBase(r, kind, k.prefix, name, ""), kind: k, msg: msg}
	s.zone = parent.zone
	return s
}

func addLoadBalancerListeners(a *account, r *request) (result, *apiError) {
	id, err := r.required("loadbalancer")
	if err != nil {
		return nil, err
	}
	objs := r.objects("listeners")
	if len(objs) == 0 {
		return nil, errMissing("listeners.1.listener_port")
	}
	lb, err := lookupOne(r, a.loadbalancers(), id)
	if err != nil {
		return nil, err
	}
	if err := lb.alive(); err != nil {
		return nil, err
	}
	used := map[int32]bool{}
	for _, l := range a.ofParent("loadbalancer_listener", "loadbalancer_id", lb.id) {
		used[l.msg.(*iaasv1.LoadbalancerListener).GetListenerPort()] = true
	}
	var ls []*stored
	for _, o := range objs {
		port, err := objInt(o, "listeners", "listener_port", 0)
		if err != nil {
			return nil, err
		}
		if port < 1 || port > 65535 {
			return nil, errInvalid("parameter [listeners.N.listener_port] should be between 1 and 65535, got [%d]", port)
		}
		if used[int32(port)] {
			return nil, errDenied("listener port [%d] is already used in loadbalancer [%s]", port, lb.id)
		}
		used[int32(port)] = true
		protocol := strings.TrimSpace(o["listener_protocol"])
		if !slices.Contains(listenerProtocols, protocol) {
			return nil, errInvalid("parameter [listeners.N.listener_protocol] should be one of %v, got [%s]", listenerProtocols, clip(protocol))
		}
		mode, err := balanceMode(o["balance_mode"], "listeners.N.balance_mode")
		if err != nil {
			return nil, err
		}
		m := &iaasv1.LoadbalancerListener{LoadbalancerId: proto.String(lb.id), ListenerPort: proto.Int32(int32(port)),
			ListenerProtocol: proto.String(protocol), BackendProtocol: proto.String(cmp.Or(strings.TrimSpace(o["backend_protocol"]), protocol)),
			BalanceMode: proto.String(mode), SessionSticky: proto.String(o["session_sticky"]),
			HealthyCheckMethod: proto.String(cmp.Or(o["healthy_check_method"], "tcp")),
			HealthyCheckOption: proto.String(cmp.Or(o["healthy_check_option"], "10|5|2|5"))}
		for field, dst := range map[string]**int32{"forwardfor": &m.Forwardfor, "listener_option": &m.ListenerOption, "timeout": &m.Timeout} {
			n, err := objInt(o, "listeners", field, 0)
			if err != nil {
				return nil, err
			}
			*dst = proto.Int32(int32(n))
		}
		if c := strings.TrimSpace(o["server_certificate_id"]); c != "" {
			m.ServerCertificateId = strings.Split(c, ",")
		}
		ls = append(ls, a.child(r, "loadbalancer_listener", o["loadbalancer_listener_name"], lb, m))
	}
	out := make([]string, len(ls))
	for i, l := range ls {
		a.storeNamed("loadbalancer_listener")[l.id] = l
		out[i] = l.id
	}
	lbMsg(lb).IsApplied = proto.Int32(0)
	return result{"loadbalancer_listeners": out}, nil
}

func addLoadBalancerBackends(a *account, r *request) (result, *apiError) {
	id, err := r.required("loadbalancer_listener")
	if err != nil {
		return nil, err
	}
	objs := r.objects("backends")
	if len(objs) == 0 {
		return nil, errMissing("backends.1.resource_id")
	}
	l, err := lookupOne(r, a.storeNamed("loadbalancer_listener"), id)
	if err != nil {
		return nil, err
	}
	var bs []*stored
	for _, o := range objs {
		rid := strings.TrimSpace(o["resource_id"])
		if rid == "" {
			return nil, errMissing("backends.N.resource_id")
		}
		if _, err := lookupOne(r, a.instances(), rid); err != nil {
			return nil, err
		}
		port, err := objInt(o, "backends", "port", 0)
		if err != nil {
			return nil, err
		}
		if port < 1 || port > 65535 {
			return nil, errInvalid("parameter [backends.N.port] should be between 1 and 65535, got [%d]", port)
		}
		weight, err := objInt(o, "backends", "weight", 5)
		if err != nil {
			return nil, err
		}
		if weight < 1 || weight > 100 {
			return nil, errInvalid("parameter [backends.N.weight] should be between 1 and 100, got [%d]", weight)
		}
		m := &iaasv1.LoadbalancerBackend{LoadbalancerListenerId: proto.String(l.id), LoadbalancerId: proto.String(l.str("loadbalancer_id")),
			ResourceId: proto.String(rid), LoadbalancerPolicyId: proto.String(o["loadbalancer_policy_id"]),
			Port: proto.Int32(int32(port)), Weight: proto.Int32(int32(weight))}
		bs = append(bs, a.child(r, "loadbalancer_backend", o["loadbalancer_backend_name"], l, m))
	}
	out := make([]string, len(bs))
	for i, b := range bs {
		a.storeNamed("loadbalancer_backend")[b.id] = b
		out[i] = b.id
	}
	a.unapplyLB(l)
	return result{"loadbalancer_backends": out}, nil
}
