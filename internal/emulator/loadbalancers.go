package emulator

import (
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

type lbListener struct {
	id, lbID, name                       string
	protocol, backendProtocol            string
	balanceMode, sessionSticky           string
	healthyCheckMethod, healthyCheckOpts string
	port, forwardfor, option, timeout    int
	certs                                []string
	created                              time.Time
}

type lbBackend struct {
	id, name, listenerID, lbID string
	resourceID, policyID       string
	port, weight, disabled     int
	created                    time.Time
}

type lbBackendOut struct {
	LoadbalancerBackendID   string `json:"loadbalancer_backend_id"`
	LoadbalancerBackendName string `json:"loadbalancer_backend_name"`
	LoadbalancerListenerID  string `json:"loadbalancer_listener_id"`
	LoadbalancerPolicyID    string `json:"loadbalancer_policy_id"`
	LoadbalancerID          string `json:"loadbalancer_id"`
	Port                    int    `json:"port"`
	Weight                  int    `json:"weight"`
	ResourceID              string `json:"resource_id"`
	Status                  string `json:"status"`
	CreateTime              jtime  `json:"create_time"`
}

type lbListenerOut struct {
	LoadbalancerListenerID   string         `json:"loadbalancer_listener_id"`
	LoadbalancerListenerName string         `json:"loadbalancer_listener_name"`
	LoadbalancerID           string         `json:"loadbalancer_id"`
	ListenerPort             int            `json:"listener_port"`
	ListenerProtocol         string         `json:"listener_protocol"`
	BackendProtocol          string         `json:"backend_protocol"`
	BalanceMode              string         `json:"balance_mode"`
	SessionSticky            string         `json:"session_sticky"`
	Forwardfor               int            `json:"forwardfor"`
	HealthyCheckMethod       string         `json:"healthy_check_method"`
	HealthyCheckOption       string         `json:"healthy_check_option"`
	ListenerOption           int            `json:"listener_option"`
	ServerCertificateID      []string       `json:"server_certificate_id"`
	Timeout                  int            `json:"timeout"`
	CreateTime               jtime          `json:"create_time"`
	Backends                 []lbBackendOut `json:"backends,omitempty"`
}

func init() {
	register("CreateLoadBalancer", createLoadBalancer)
	register("AssociateEipsToLoadBalancer", associateEipsToLoadBalancer)
	register("DissociateEipsFromLoadBalancer", dissociateEipsFromLoadBalancer)
	register("AddLoadBalancerListeners", addLoadBalancerListeners)
	register("DescribeLoadBalancerListeners", describeLoadBalancerListeners)
	register("DeleteLoadBalancerListeners", deleteLoadBalancerListeners)
	register("ModifyLoadBalancerListenerAttributes", modifyLoadBalancerListenerAttributes)
	register("AddLoadBalancerBackends", addLoadBalancerBackends)
	register("DescribeLoadBalancerBackends", describeLoadBalancerBackends)
	register("DeleteLoadBalancerBackends", deleteLoadBalancerBackends)
	register("ModifyLoadBalancerBackendAttributes", modifyLoadBalancerBackendAttributes)
}

// loadbalancerRow is the generic store's row of load balancers (DescribeLoadBalancers, the lifecycle
// verbs and ModifyLoadBalancerAttributes are answered there): their EIPs and, verbose, listeners are
// relations; Update applies the listener and backend changes (is_applied), Resize changes the type,
// Delete frees the EIPs, listeners and backends. Statuses: pending, active, stopped, suspended,
// deleted, ceased.
var loadbalancerRow = kindRow{prefix: "lb", describe: describeLB, verbs: map[string]verbRule{
	"Delete": {from: []string{"active", "stopped"}, past: "deleted",
		done: func(a *account, _ *request, s *stored) { a.releaseLB(s) }},
	"Start": {from: []string{"stopped"}, past: "started"},
	"Stop":  {from: []string{"active"}, past: "stopped"},
	"Update": {from: []string{"active"}, past: "updated",
		done: func(_ *account, _ *request, s *stored) { lbMsg(s).IsApplied = proto.Int32(1) }},
	"Resize": {from: []string{"active", "stopped"}, past: "resized", transition: "updating",
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
func describeLB(a *account, r *request, s *stored, out map[string]any) {
	eips := []any{}
	for _, e := range a.lbEipsOf(s) {
		eips = append(eips, map[string]any{"eip_id": e.id, "eip_name": e.name, "eip_addr": eipMsg(e).GetEipAddr()})
	}
	out["eips"] = eips
	if v, _ := r.integer("verbose", 0); v != 0 {
		ls := []lbListenerOut{}
		for _, l := range a.lbListeners(s.id) {
			ls = append(ls, a.renderListener(l, true))
		}
		if len(ls) > 0 {
			out["listeners"] = ls
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
	eips, err := lookup(r, a.eips(), idl, storedBase)
	if err != nil {
		return nil, err
	}
	return eips, nil
}

// associateLBEips links available eips to lb with the job j.
func (a *account) associateLBEips(lb *stored, eips []*stored, j *job) {
	for i, e := range eips {
		e := e
		a.linkEip(e, "loadbalancer", lb.id, lb.name)
		lbMsg(lb).Eips = append(lbMsg(lb).Eips, &iaasv1.Eip{EipId: proto.String(e.id)})
		a.begin(&e.base, j, i, len(eips), op{transition: "associating", to: "associated", undo: func() { a.unlinkEip(e) }},
			remover(a, a.eips(), e.id))
	}
}

func createLoadBalancer(a *account, r *request) (result, *apiError) {
	typ, err := lbType(r, 0)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"http_header_size", "mode", "cluster_mode"} {
		if _, err := r.integer(name, 0); err != nil {
			return nil, err
		}
	}
	nodes, err := r.integer("node_count", 2)
	if err != nil {
		return nil, err
	}
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
		if ip := a.newNic(v, "", r.now).ip; ip != "" {
			m.PrivateIps = []string{ip}
		}
	}
	lb.msg = m
	a.loadbalancers()[lb.id] = lb
	j := a.newJob(r, append([]string{lb.id}, ids(eips, storedBase)...))
	a.begin(&lb.base, j, 0, 1, op{transition: "creating", to: "active", failTo: "ceased",
		undo: func() { a.releaseLB(lb) }}, remover(a, a.loadbalancers(), lb.id))
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
	for id, l := range a.listeners {
		if l.lbID == lb.id {
			delete(a.listeners, id)
		}
	}
	for id, b := range a.backends {
		if b.lbID == lb.id {
			delete(a.backends, id)
		}
	}
}

func (a *account) lbListeners(lbID string) []*lbListener {
	var out []*lbListener
	for _, l := range a.listeners {
		if l.lbID == lbID {
			out = append(out, l)
		}
	}
	sortByCreated(out, func(l *lbListener) time.Time { return l.created }, func(l *lbListener) string { return l.id })
	return out
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
	lb, err := lookupOne(r, a.loadbalancers(), id, storedBase)
	if err != nil {
		return nil, nil, err
	}
	if err := lb.need("changed", "active", "stopped"); err != nil {
		return nil, nil, err
	}
	return lb, eips, nil
}

func associateEipsToLoadBalancer(a *account, r *request) (result, *apiError) {
	lb, eips, err := lbAndEips(a, r)
	if err != nil {
		return nil, err
	}
	for _, e := range eips {
		if err := e.need("associated", "available"); err != nil {
			return nil, err
		}
	}
	j := a.newJob(r, append([]string{lb.id}, ids(eips, storedBase)...))
	a.begin(&lb.base, j, 0, 1, op{transition: "updating"}, remover(a, a.loadbalancers(), lb.id))
	a.associateLBEips(lb, eips, j)
	return result{"job_id": j.id}, nil
}

func dissociateEipsFromLoadBalancer(a *account, r *request) (result, *apiError) {
	lb, eips, err := lbAndEips(a, r)
	if err != nil {
		return nil, err
	}
	for _, e := range eips {
		if err := e.need("dissociated", "associated"); err != nil {
			return nil, err
		}
		if eipMsg(e).GetResource().GetResourceId() != lb.id {
			return nil, errDenied("eip [%s] is not associated with loadbalancer [%s]", e.id, lb.id)
		}
	}
	j := a.newJob(r, append([]string{lb.id}, ids(eips, storedBase)...))
	a.begin(&lb.base, j, 0, 1, op{transition: "updating"}, remover(a, a.loadbalancers(), lb.id))
	for i, e := range eips {
		e := e
		a.begin(&e.base, j, i, len(eips), op{transition: "dissociating", to: "available", ok: func() { a.unlinkEip(e) }},
			remover(a, a.eips(), e.id))
	}
	return result{"job_id": j.id}, nil
}

// findListener looks up a listener whose load balancer is in the request zone.
func (a *account) findListener(r *request, id string) (*lbListener, *stored, *apiError) {
	l := a.listeners[id]
	if l == nil {
		return nil, nil, errNotFound(id)
	}
	lb := a.loadbalancers()[l.lbID]
	if lb == nil || !r.inZone(lb.zone) {
		return nil, nil, errNotFound(id)
	}
	return l, lb, nil
}

var listenerProtocols = []string{"http", "https", "tcp", "udp", "ssl"}

func addLoadBalancerListeners(a *account, r *request) (result, *apiError) {
	id, err := r.required("loadbalancer")
	if err != nil {
		return nil, err
	}
	objs := r.objects("listeners")
	if len(objs) == 0 {
		return nil, errMissing("listeners.1.listener_port")
	}
	lb, err := lookupOne(r, a.loadbalancers(), id, storedBase)
	if err != nil {
		return nil, err
	}
	if err := lb.alive(); err != nil {
		return nil, err
	}
	used := map[int]bool{}
	for _, l := range a.lbListeners(lb.id) {
		used[l.port] = true
	}
	var ls []*lbListener
	for _, o := range objs {
		port, err := objInt(o, "listeners", "listener_port", 0)
		if err != nil {
			return nil, err
		}
		if port < 1 || port > 65535 {
			return nil, errInvalid("parameter [listeners.N.listener_port] should be between 1 and 65535, got [%d]", port)
		}
		if used[port] {
			return nil, errDenied("listener port [%d] is already used in loadbalancer [%s]", port, lb.id)
		}
		used[port] = true
		proto := strings.TrimSpace(o["listener_protocol"])
		if !slices.Contains(listenerProtocols, proto) {
			return nil, errInvalid("parameter [listeners.N.listener_protocol] should be one of %v, got [%s]", listenerProtocols, clip(proto))
		}
		backend := strings.TrimSpace(o["backend_protocol"])
		if backend == "" {
			backend = proto
		}
		mode := strings.TrimSpace(o["balance_mode"])
		if mode == "" {
			mode = "roundrobin"
		}
		if !slices.Contains([]string{"roundrobin", "leastconn", "source"}, mode) {
			return nil, errInvalid("parameter [listeners.N.balance_mode] should be roundrobin, leastconn or source, got [%s]", clip(mode))
		}
		l := &lbListener{lbID: lb.id, name: o["loadbalancer_listener_name"], protocol: proto, backendProtocol: backend,
			balanceMode: mode, sessionSticky: o["session_sticky"], healthyCheckMethod: o["healthy_check_method"],
			healthyCheckOpts: o["healthy_check_option"], port: port, created: r.now}
		if l.healthyCheckMethod == "" {
			l.healthyCheckMethod = "tcp"
		}
		if l.healthyCheckOpts == "" {
			l.healthyCheckOpts = "10|5|2|5"
		}
		for field, dst := range map[string]*int{"forwardfor": &l.forwardfor, "listener_option": &l.option, "timeout": &l.timeout} {
			if *dst, err = objInt(o, "listeners", field, 0); err != nil {
				return nil, err
			}
		}
		if c := strings.TrimSpace(o["server_certificate_id"]); c != "" {
			l.certs = strings.Split(c, ",")
		}
		ls = append(ls, l)
	}
	out := make([]string, len(ls))
	for i, l := range ls {
		l.id = a.newID("lbl")
		a.listeners[l.id] = l
		out[i] = l.id
	}
	lbMsg(lb).IsApplied = proto.Int32(0)
	return result{"loadbalancer_listeners": out}, nil
}

func (a *account) renderListener(l *lbListener, withBackends bool) lbListenerOut {
	out := lbListenerOut{LoadbalancerListenerID: l.id, LoadbalancerListenerName: l.name, LoadbalancerID: l.lbID,
		ListenerPort: l.port, ListenerProtocol: l.protocol, BackendProtocol: l.backendProtocol, BalanceMode: l.balanceMode,
		SessionSticky: l.sessionSticky, Forwardfor: l.forwardfor, HealthyCheckMethod: l.healthyCheckMethod,
		HealthyCheckOption: l.healthyCheckOpts, ListenerOption: l.option, ServerCertificateID: slices.Clone(l.certs),
		Timeout: l.timeout, CreateTime: jtime(l.created)}
	if out.ServerCertificateID == nil {
		out.ServerCertificateID = []string{}
	}
	if withBackends {
		out.Backends = []lbBackendOut{}
		for _, b := range a.listenerBackends(l.id) {
			out.Backends = append(out.Backends, a.renderBackend(b))
		}
	}
	return out
}

func describeLoadBalancerListeners(a *account, r *request) (result, *apiError) {
	verbose, err := r.flag("verbose")
	if err != nil {
		return nil, err
	}
	idOK := idFilter(r.list("loadbalancer_listeners"))
	lbID := strings.TrimSpace(r.str("loadbalancer"))
	var items []*lbListener
	for _, l := range a.listeners {
		lb := a.loadbalancers()[l.lbID]
		if lb != nil && r.inZone(lb.zone) && idOK(l.id) && (lbID == "" || l.lbID == lbID) {
			items = append(items, l)
		}
	}
	sortByCreated(items, func(l *lbListener) time.Time { return l.created }, func(l *lbListener) string { return l.id })
	return describeResult(r, "loadbalancer_listener_set", items, func(l *lbListener) lbListenerOut {
		return a.renderListener(l, verbose)
	})
}

func deleteLoadBalancerListeners(a *account, r *request) (result, *apiError) {
	idl, err := r.requiredList("loadbalancer_listeners")
	if err != nil {
		return nil, err
	}
	for _, id := range idl {
		if _, _, err := a.findListener(r, id); err != nil {
			return nil, err
		}
	}
	for _, id := range idl {
		if lb := a.loadbalancers()[a.listeners[id].lbID]; lb != nil {
			lbMsg(lb).IsApplied = proto.Int32(0)
		}
		delete(a.listeners, id)
		for bid, b := range a.backends {
			if b.listenerID == id {
				delete(a.backends, bid)
			}
		}
	}
	return result{"loadbalancer_listeners": idl}, nil
}

func modifyLoadBalancerListenerAttributes(a *account, r *request) (result, *apiError) {
	id, err := r.required("loadbalancer_listener")
	if err != nil {
		return nil, err
	}
	l, lb, err := a.findListener(r, id)
	if err != nil {
		return nil, err
	}
	for name, dst := range map[string]*int{"forwardfor": &l.forwardfor, "listener_option": &l.option, "timeout": &l.timeout} {
		if *dst, err = r.integer(name, *dst); err != nil {
			return nil, err
		}
	}
	if mode := strings.TrimSpace(r.str("balance_mode")); mode != "" {
		if !slices.Contains([]string{"roundrobin", "leastconn", "source"}, mode) {
			return nil, errInvalid("parameter [balance_mode] should be roundrobin, leastconn or source, got [%s]", clip(mode))
		}
		l.balanceMode = mode
	}
	for name, dst := range map[string]*string{"loadbalancer_listener_name": &l.name, "session_sticky": &l.sessionSticky,
		"healthy_check_method": &l.healthyCheckMethod, "healthy_check_option": &l.healthyCheckOpts} {
		if r.has(name) {
			*dst = strings.TrimSpace(r.str(name))
		}
	}
	if certs := r.list("server_certificate_id"); len(certs) > 0 {
		l.certs = certs
	}
	lbMsg(lb).IsApplied = proto.Int32(0)
	return result{}, nil
}

func (a *account) listenerBackends(listenerID string) []*lbBackend {
	var out []*lbBackend
	for _, b := range a.backends {
		if b.listenerID == listenerID {
			out = append(out, b)
		}
	}
	sortByCreated(out, func(b *lbBackend) time.Time { return b.created }, func(b *lbBackend) string { return b.id })
	return out
}

func (a *account) renderBackend(b *lbBackend) lbBackendOut {
	status := "down"
	if inst := a.instances[b.resourceID]; inst != nil && inst.status == "running" && b.disabled == 0 {
		status = "active"
	}
	return lbBackendOut{LoadbalancerBackendID: b.id, LoadbalancerBackendName: b.name, LoadbalancerListenerID: b.listenerID,
		LoadbalancerPolicyID: b.policyID, LoadbalancerID: b.lbID, Port: b.port, Weight: b.weight, ResourceID: b.resourceID,
		Status: status, CreateTime: jtime(b.created)}
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
	l, lb, err := a.findListener(r, id)
	if err != nil {
		return nil, err
	}
	var bs []*lbBackend
	for _, o := range objs {
		rid := strings.TrimSpace(o["resource_id"])
		if rid == "" {
			return nil, errMissing("backends.N.resource_id")
		}
		if _, err := lookupOne(r, a.instances, rid, instBase); err != nil {
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
		bs = append(bs, &lbBackend{name: o["loadbalancer_backend_name"], listenerID: l.id, lbID: lb.id, resourceID: rid,
			policyID: o["loadbalancer_policy_id"], port: port, weight: weight, created: r.now})
	}
	out := make([]string, len(bs))
	for i, b := range bs {
		b.id = a.newID("lbb")
		a.backends[b.id] = b
		out[i] = b.id
	}
	lbMsg(lb).IsApplied = proto.Int32(0)
	return result{"loadbalancer_backends": out}, nil
}

func describeLoadBalancerBackends(a *account, r *request) (result, *apiError) {
	if _, err := r.integer("verbose", 0); err != nil {
		return nil, err
	}
	idOK := idFilter(r.list("loadbalancer_backends"))
	lid, lbID := strings.TrimSpace(r.str("loadbalancer_listener")), strings.TrimSpace(r.str("loadbalancer"))
	var items []*lbBackend
	for _, b := range a.backends {
		lb := a.loadbalancers()[b.lbID]
		if lb != nil && r.inZone(lb.zone) && idOK(b.id) && (lid == "" || b.listenerID == lid) && (lbID == "" || b.lbID == lbID) {
			items = append(items, b)
		}
	}
	sortByCreated(items, func(b *lbBackend) time.Time { return b.created }, func(b *lbBackend) string { return b.id })
	return describeResult(r, "loadbalancer_backend_set", items, a.renderBackend)
}

func (a *account) findBackend(r *request, id string) (*lbBackend, *apiError) {
	b := a.backends[id]
	if b == nil {
		return nil, errNotFound(id)
	}
	if lb := a.loadbalancers()[b.lbID]; lb == nil || !r.inZone(lb.zone) {
		return nil, errNotFound(id)
	}
	return b, nil
}

func deleteLoadBalancerBackends(a *account, r *request) (result, *apiError) {
	idl, err := r.requiredList("loadbalancer_backends")
	if err != nil {
		return nil, err
	}
	for _, id := range idl {
		if _, err := a.findBackend(r, id); err != nil {
			return nil, err
		}
	}
	for _, id := range idl {
		if lb := a.loadbalancers()[a.backends[id].lbID]; lb != nil {
			lbMsg(lb).IsApplied = proto.Int32(0)
		}
		delete(a.backends, id)
	}
	return result{"loadbalancer_backends": idl}, nil
}

func modifyLoadBalancerBackendAttributes(a *account, r *request) (result, *apiError) {
	id, err := r.required("loadbalancer_backend")
	if err != nil {
		return nil, err
	}
	b, err := a.findBackend(r, id)
	if err != nil {
		return nil, err
	}
	for name, dst := range map[string]*int{"port": &b.port, "weight": &b.weight, "disabled": &b.disabled} {
		if *dst, err = r.integer(name, *dst); err != nil {
			return nil, err
		}
	}
	for name, dst := range map[string]*string{"loadbalancer_backend_name": &b.name, "loadbalancer_policy_id": &b.policyID} {
		if r.has(name) {
			*dst = strings.TrimSpace(r.str(name))
		}
	}
	if lb := a.loadbalancers()[b.lbID]; lb != nil {
		lbMsg(lb).IsApplied = proto.Int32(0)
	}
	return result{}, nil
}
