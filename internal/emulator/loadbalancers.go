package emulator

import (
	"slices"
	"strings"
	"time"
)

// loadBalancer statuses: pending, active, stopped, suspended, deleted, ceased. Listener and
// backend changes set is_applied to 0 until UpdateLoadBalancers completes.
type loadBalancer struct {
	base
	lbType    int
	vxnetID   string
	privateIP string
	sgID      string
	eipIDs    []string
	nodeCount int
	applied   bool
}

func lbBase(v *loadBalancer) *base { return &v.base }

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

type lbEipOut struct {
	EipID   string `json:"eip_id"`
	EipName string `json:"eip_name"`
	EipAddr string `json:"eip_addr"`
}

type loadBalancerOut struct {
	LoadbalancerID   string          `json:"loadbalancer_id"`
	LoadbalancerName string          `json:"loadbalancer_name"`
	LoadbalancerType int             `json:"loadbalancer_type"`
	Description      string          `json:"description"`
	Listeners        []lbListenerOut `json:"listeners,omitempty"`
	IsApplied        int             `json:"is_applied"`
	Status           string          `json:"status"`
	TransitionStatus string          `json:"transition_status"`
	Eips             []lbEipOut      `json:"eips"`
	VxnetID          string          `json:"vxnet_id"`
	CreateTime       jtime           `json:"create_time"`
	StatusTime       jtime           `json:"status_time"`
	SecurityGroupID  string          `json:"security_group_id"`
	PrivateIPs       []string        `json:"private_ips"`
	NodeCount        int             `json:"node_count"`
	Tags             []tagOut        `json:"tags"`
}

func init() {
	register("CreateLoadBalancer", createLoadBalancer)
	register("DescribeLoadBalancers", describeLoadBalancers)
	register("DeleteLoadBalancers", deleteLoadBalancers)
	register("StartLoadBalancers", startLoadBalancers)
	register("StopLoadBalancers", stopLoadBalancers)
	register("UpdateLoadBalancers", updateLoadBalancers)
	register("ResizeLoadBalancers", resizeLoadBalancers)
	register("AssociateEipsToLoadBalancer", associateEipsToLoadBalancer)
	register("DissociateEipsFromLoadBalancer", dissociateEipsFromLoadBalancer)
	register("ModifyLoadBalancerAttributes", modifyLoadBalancerAttributes)
	register("AddLoadBalancerListeners", addLoadBalancerListeners)
	register("DescribeLoadBalancerListeners", describeLoadBalancerListeners)
	register("DeleteLoadBalancerListeners", deleteLoadBalancerListeners)
	register("ModifyLoadBalancerListenerAttributes", modifyLoadBalancerListenerAttributes)
	register("AddLoadBalancerBackends", addLoadBalancerBackends)
	register("DescribeLoadBalancerBackends", describeLoadBalancerBackends)
	register("DeleteLoadBalancerBackends", deleteLoadBalancerBackends)
	register("ModifyLoadBalancerBackendAttributes", modifyLoadBalancerBackendAttributes)
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
func (a *account) associateLBEips(lb *loadBalancer, eips []*stored, j *job) {
	for i, e := range eips {
		e := e
		a.linkEip(e, "loadbalancer", lb.id, lb.name)
		lb.eipIDs = append(lb.eipIDs, e.id)
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
		sg, err := lookupOne(r, a.sgs, id, sgBase)
		if err != nil {
			return nil, err
		}
		sgID = sg.id
	}
	lb := &loadBalancer{base: a.newBase(r, "loadbalancer", "lb", r.str("loadbalancer_name"), "pending"), lbType: typ,
		vxnetID: vxID, sgID: sgID, nodeCount: nodes, applied: true, privateIP: strings.TrimSpace(r.str("private_ip"))}
	if lb.privateIP == "" && vxID != "" {
		if v, _ := a.findVxnet(r, vxID); v != nil {
			lb.privateIP = a.newNic(v, "", r.now).ip
		}
	}
	a.lbs[lb.id] = lb
	j := a.newJob(r, append([]string{lb.id}, ids(eips, storedBase)...))
	a.begin(&lb.base, j, 0, 1, op{transition: "creating", to: "active", failTo: "ceased",
		undo: func() { a.releaseLB(lb) }}, remover(a, a.lbs, lb.id))
	a.associateLBEips(lb, eips, j)
	return result{"loadbalancer_id": lb.id, "job_id": j.id}, nil
}

// releaseLB frees the eips, listeners and backends of a deleted load balancer.
func (a *account) releaseLB(lb *loadBalancer) {
	for _, eid := range slices.Clone(lb.eipIDs) {
		if e := a.eips()[eid]; e != nil {
			a.unlinkEip(e)
			if e.status == "associated" {
				e.status, e.statusTime = "available", lb.statusTime
			}
		}
	}
	lb.eipIDs = nil
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

func describeLoadBalancers(a *account, r *request) (result, *apiError) {
	verbose, err := r.flag("verbose")
	if err != nil {
		return nil, err
	}
	keep := a.describeFilter(r, "loadbalancers")
	items := filterSorted(a.lbs, lbBase, func(v *loadBalancer) bool { return keep(&v.base) })
	return describeResult(r, "loadbalancer_set", items, func(v *loadBalancer) loadBalancerOut {
		out := loadBalancerOut{LoadbalancerID: v.id, LoadbalancerName: v.name, LoadbalancerType: v.lbType,
			Description: v.description, IsApplied: b2i(v.applied), Status: v.status, TransitionStatus: v.transition,
			Eips: []lbEipOut{}, VxnetID: v.vxnetID, CreateTime: jtime(v.created), StatusTime: jtime(v.statusTime),
			SecurityGroupID: v.sgID, PrivateIPs: []string{}, NodeCount: v.nodeCount, Tags: a.tagsOf(v.id)}
		if v.privateIP != "" {
			out.PrivateIPs = []string{v.privateIP}
		}
		for _, eid := range v.eipIDs {
			if e := a.eips()[eid]; e != nil {
				out.Eips = append(out.Eips, lbEipOut{EipID: e.id, EipName: e.name, EipAddr: eipMsg(e).GetEipAddr()})
			}
		}
		if verbose {
			out.Listeners = []lbListenerOut{}
			for _, l := range a.lbListeners(v.id) {
				out.Listeners = append(out.Listeners, a.renderListener(l, true))
			}
		}
		return out
	})
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

// lbAction is the common shape of the loadbalancers.N actions with a job.
func (a *account) lbAction(r *request, verb string, allowed []string, o func(*loadBalancer) op) (result, *apiError) {
	return jobOnEach(a, r, "loadbalancers", a.lbs, lbBase, verb, allowed, nil, o)
}

func deleteLoadBalancers(a *account, r *request) (result, *apiError) {
	res, err := a.lbAction(r, "deleted", []string{"active", "stopped"}, func(lb *loadBalancer) op {
		return op{transition: "deleting", to: "deleted", ok: func() { a.releaseLB(lb) }}
	})
	if err != nil {
		return nil, err
	}
	res["loadbalancers"] = r.list("loadbalancers")
	return res, nil
}

func startLoadBalancers(a *account, r *request) (result, *apiError) {
	return a.lbAction(r, "started", []string{"stopped"}, func(*loadBalancer) op {
		return op{transition: "starting", to: "active"}
	})
}

func stopLoadBalancers(a *account, r *request) (result, *apiError) {
	return a.lbAction(r, "stopped", []string{"active"}, func(*loadBalancer) op {
		return op{transition: "stopping", to: "stopped"}
	})
}

func updateLoadBalancers(a *account, r *request) (result, *apiError) {
	return a.lbAction(r, "updated", []string{"active"}, func(lb *loadBalancer) op {
		return op{transition: "updating", ok: func() { lb.applied = true }}
	})
}

func resizeLoadBalancers(a *account, r *request) (result, *apiError) {
	typ, err := lbType(r, -1)
	if err != nil {
		return nil, err
	}
	if typ < 0 {
		return nil, errMissing("loadbalancer_type")
	}
	return a.lbAction(r, "resized", []string{"active", "stopped"}, func(lb *loadBalancer) op {
		return op{transition: "updating", ok: func() { lb.lbType = typ }}
	})
}

func lbAndEips(a *account, r *request) (*loadBalancer, []*stored, *apiError) {
	id, err := r.required("loadbalancer")
	if err != nil {
		return nil, nil, err
	}
	eips, err := a.lbEips(r, true)
	if err != nil {
		return nil, nil, err
	}
	lb, err := lookupOne(r, a.lbs, id, lbBase)
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
	a.begin(&lb.base, j, 0, 1, op{transition: "updating"}, remover(a, a.lbs, lb.id))
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
	a.begin(&lb.base, j, 0, 1, op{transition: "updating"}, remover(a, a.lbs, lb.id))
	for i, e := range eips {
		e := e
		a.begin(&e.base, j, i, len(eips), op{transition: "dissociating", to: "available", ok: func() { a.unlinkEip(e) }},
			remover(a, a.eips(), e.id))
	}
	return result{"job_id": j.id}, nil
}

func modifyLoadBalancerAttributes(a *account, r *request) (result, *apiError) {
	id, err := r.required("loadbalancer")
	if err != nil {
		return nil, err
	}
	lb, err := lookupOne(r, a.lbs, id, lbBase)
	if err != nil {
		return nil, err
	}
	if err := lb.alive(); err != nil {
		return nil, err
	}
	nodes, err := r.integer("node_count", lb.nodeCount)
	if err != nil {
		return nil, err
	}
	if _, err := r.integer("http_header_size", 0); err != nil {
		return nil, err
	}
	if sid := strings.TrimSpace(r.str("security_group")); sid != "" {
		sg, err := lookupOne(r, a.sgs, sid, sgBase)
		if err != nil {
			return nil, err
		}
		lb.sgID, lb.applied = sg.id, false
	}
	if ip := strings.TrimSpace(r.str("private_ip")); ip != "" {
		lb.privateIP = ip
	}
	lb.nodeCount = nodes
	lb.modify(r, "loadbalancer_name")
	return result{}, nil
}

// findListener looks up a listener whose load balancer is in the request zone.
func (a *account) findListener(r *request, id string) (*lbListener, *loadBalancer, *apiError) {
	l := a.listeners[id]
	if l == nil {
		return nil, nil, errNotFound(id)
	}
	lb := a.lbs[l.lbID]
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
	lb, err := lookupOne(r, a.lbs, id, lbBase)
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
	lb.applied = false
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
		lb := a.lbs[l.lbID]
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
		if lb := a.lbs[a.listeners[id].lbID]; lb != nil {
			lb.applied = false
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
	lb.applied = false
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
	lb.applied = false
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
		lb := a.lbs[b.lbID]
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
	if lb := a.lbs[b.lbID]; lb == nil || !r.inZone(lb.zone) {
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
		if lb := a.lbs[a.backends[id].lbID]; lb != nil {
			lb.applied = false
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
	if lb := a.lbs[b.lbID]; lb != nil {
		lb.applied = false
	}
	return result{}, nil
}
