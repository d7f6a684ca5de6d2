package emulator

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// router statuses: pending, active, poweroffed, suspended, deleted, ceased.
type router struct {
	base
	routerType int
	vpcNetwork string
	privateIP  string
	sgID       string
	eipID      string
	applied    bool
}

func rtBase(v *router) *base { return &v.base }

type routerVxnetRef struct {
	VxnetID   string `json:"vxnet_id"`
	VxnetName string `json:"vxnet_name"`
	VxnetType int    `json:"vxnet_type"`
}

type routerOut struct {
	RouterID         string           `json:"router_id"`
	RouterName       string           `json:"router_name"`
	Description      string           `json:"description"`
	RouterType       int              `json:"router_type"`
	PrivateIP        string           `json:"private_ip"`
	VpcNetwork       string           `json:"vpc_network"`
	Mode             int              `json:"mode"`
	IsApplied        int              `json:"is_applied"`
	Status           string           `json:"status"`
	TransitionStatus string           `json:"transition_status"`
	SecurityGroupID  string           `json:"security_group_id"`
	EIP              eipRef           `json:"eip"`
	Vxnets           []routerVxnetRef `json:"vxnets"`
	CreateTime       jtime            `json:"create_time"`
	StatusTime       jtime            `json:"status_time"`
	Tags             []tagOut         `json:"tags"`
}

func init() {
	register("CreateRouters", createRouters)
	register("DescribeRouters", describeRouters)
	register("DeleteRouters", deleteRouters)
	register("UpdateRouters", updateRouters)
	register("PowerOffRouters", powerOffRouters)
	register("PowerOnRouters", powerOnRouters)
	register("JoinRouter", joinRouter)
	register("LeaveRouter", leaveRouter)
	register("ModifyRouterAttributes", modifyRouterAttributes)
	register("DescribeRouterVxnets", describeRouterVxnets)
}

func createRouters(a *account, r *request) (result, *apiError) {
	typ, err := r.integer("router_type", 1)
	if err != nil {
		return nil, err
	}
	if typ < 0 || typ > 3 {
		return nil, errInvalid("parameter [router_type] should be between 0 and 3, got [%d]", typ)
	}
	vpc := strings.TrimSpace(r.str("vpc_network"))
	if vpc == "" {
		vpc = "192.168.0.0/16"
	}
	if _, _, _, err := defaultIPs(vpc); err != nil {
		return nil, errInvalid("%v", err)
	}
	count, err := r.count()
	if err != nil {
		return nil, err
	}
	sgID := a.defaultSGs[a.createZone(r)]
	if id := strings.TrimSpace(r.str("security_group")); id != "" {
		sg, err := a.findSecurityGroup(r, id)
		if err != nil {
			return nil, err
		}
		sgID = sg.id
	}
	j := a.newJob(r, nil)
	out := make([]string, count)
	for i := range out {
		a.ipSeq++
		rt := &router{base: a.newBase(r, "router", "rtr", r.str("router_name"), "pending"), routerType: typ,
			vpcNetwork: vpc, sgID: sgID, applied: true,
			privateIP: fmt.Sprintf("10.70.%d.%d", (a.ipSeq/250)%256, a.ipSeq%250+2)}
		a.routers[rt.id] = rt
		out[i] = rt.id
		a.begin(&rt.base, j, i, count, op{transition: "creating", to: "active", failTo: "ceased"}, remover(a, a.routers, rt.id))
	}
	j.resourceIDs = out
	return result{"routers": out, "job_id": j.id}, nil
}

// routerVxnets returns the vxnets joined to router id, newest first.
func (a *account) routerVxnets(id string) []*stored {
	return filterSorted(a.vxnets(), storedBase, func(v *stored) bool {
		return a.joins[v.id] != nil && a.joins[v.id].msg.GetRouterId() == id
	})
}

func describeRouters(a *account, r *request) (result, *apiError) {
	if _, err := r.flag("verbose"); err != nil {
		return nil, err
	}
	keep := a.describeFilter(r, "routers")
	vx := strings.TrimSpace(r.str("vxnet"))
	items := filterSorted(a.routers, rtBase, func(v *router) bool {
		if !keep(&v.base) {
			return false
		}
		if vx != "" {
			return a.joins[vx] != nil && a.joins[vx].msg.GetRouterId() == v.id
		}
		return true
	})
	return describeResult(r, "router_set", items, func(v *router) routerOut {
		out := routerOut{RouterID: v.id, RouterName: v.name, Description: v.description, RouterType: v.routerType,
			PrivateIP: v.privateIP, VpcNetwork: v.vpcNetwork, IsApplied: b2i(v.applied), Status: v.status,
			TransitionStatus: v.transition, SecurityGroupID: v.sgID, CreateTime: jtime(v.created),
			StatusTime: jtime(v.statusTime), Tags: a.tagsOf(v.id), Vxnets: []routerVxnetRef{}}
		if e := a.eips()[v.eipID]; e != nil {
			bw := int(eipMsg(e).GetBandwidth())
			out.EIP = eipRef{EipID: e.id, EipAddr: eipMsg(e).GetEipAddr(), Bandwidth: &bw}
		}
		for _, x := range a.routerVxnets(v.id) {
			out.Vxnets = append(out.Vxnets, routerVxnetRef{VxnetID: x.id, VxnetName: x.name, VxnetType: int(vxnetMsg(x).GetVxnetType())})
		}
		return out
	})
}

// routerAction is the common shape of the routers.N actions with a job.
func routerAction(a *account, r *request, verb string, allowed []string, check func(*router) *apiError,
	o func(*router) op) (result, *apiError) {
	return jobOnEach(a, r, "routers", a.routers, rtBase, verb, allowed, check, o)
}

func deleteRouters(a *account, r *request) (result, *apiError) {
	res, err := routerAction(a, r, "deleted", []string{"active", "poweroffed"}, func(rt *router) *apiError {
		if vs := a.routerVxnets(rt.id); len(vs) > 0 {
			return errDenied("router [%s] still has vxnet [%s], can not be deleted", rt.id, vs[0].id)
		}
		return nil
	}, func(rt *router) op {
		return op{transition: "deleting", to: "deleted", ok: func() {
			if e := a.eips()[rt.eipID]; e != nil {
				a.unlinkEip(e)
				e.status = "available"
			}
		}}
	})
	if err != nil {
		return nil, err
	}
	res["routers"] = r.list("routers")
	return res, nil
}

func updateRouters(a *account, r *request) (result, *apiError) {
	return routerAction(a, r, "updated", []string{"active"}, nil, func(rt *router) op {
		return op{transition: "updating", ok: func() { rt.applied = true }}
	})
}

func powerOffRouters(a *account, r *request) (result, *apiError) {
	return routerAction(a, r, "powered off", []string{"active"}, nil, func(*router) op {
		return op{transition: "poweroffing", to: "poweroffed"}
	})
}

func powerOnRouters(a *account, r *request) (result, *apiError) {
	return routerAction(a, r, "powered on", []string{"poweroffed"}, nil, func(*router) op {
		return op{transition: "poweroning", to: "active"}
	})
}

func joinRouter(a *account, r *request) (result, *apiError) {
	vid, err := r.required("vxnet")
	if err != nil {
		return nil, err
	}
	rid, err := r.required("router")
	if err != nil {
		return nil, err
	}
	network, err := r.required("ip_network")
	if err != nil {
		return nil, err
	}
	features, err := r.integer("features", 1)
	if err != nil {
		return nil, err
	}
	manager, start, end, perr := defaultIPs(network)
	if perr != nil {
		return nil, errInvalid("%v", perr)
	}
	for name, dst := range map[string]*string{"manager_ip": &manager, "dyn_ip_start": &start, "dyn_ip_end": &end} {
		if v := strings.TrimSpace(r.str(name)); v != "" {
			if !ipInNetwork(v, network) {
				return nil, errInvalid("parameter [%s] [%s] is not in ip_network [%s]", name, clip(v), network)
			}
			*dst = v
		}
	}
	if vid == vxnet0 {
		return nil, errDenied("vxnet [%s] is the basic network, can not join a router", vid)
	}
	v, err := lookupOne(r, a.vxnets(), vid, storedBase)
	if err != nil {
		return nil, err
	}
	rt, err := lookupOne(r, a.routers, rid, rtBase)
	if err != nil {
		return nil, err
	}
	if err := rt.need("joined", "active", "poweroffed"); err != nil {
		return nil, err
	}
	if vxnetMsg(v).GetVxnetType() != 1 {
		return nil, errDenied("vxnet [%s] is not a managed vxnet, can not join a router", v.id)
	}
	if j := a.joins[v.id]; j != nil {
		return nil, errDenied("vxnet [%s] is already joined to router [%s]", v.id, j.msg.GetRouterId())
	}
	for _, other := range a.routerVxnets(rt.id) {
		if a.joins[other.id].msg.GetIpNetwork() == network {
			return nil, errDenied("ip_network [%s] is already used by vxnet [%s] of router [%s]", network, other.id, rt.id)
		}
	}
	j := a.newJob(r, []string{v.id, rt.id})
	a.joins[v.id] = &routerJoin{nextHost: 2, msg: &iaasv1.RouterVxnet{RouterId: proto.String(rt.id),
		VxnetId: proto.String(v.id), IpNetwork: proto.String(network), ManagerIp: proto.String(manager),
		DynIpStart: proto.String(start), DynIpEnd: proto.String(end), Features: proto.Int32(int32(features)),
		CreateTime: timestamppb.New(r.now)}}
	a.begin(&rt.base, j, 0, 1, op{transition: "updating", undo: func() { delete(a.joins, v.id) }},
		remover(a, a.routers, rt.id))
	return result{"vxnet_id": v.id, "router_id": rt.id, "job_id": j.id}, nil
}

func leaveRouter(a *account, r *request) (result, *apiError) {
	vids, err := r.requiredList("vxnets")
	if err != nil {
		return nil, err
	}
	rid, err := r.required("router")
	if err != nil {
		return nil, err
	}
	vxs, err := lookup(r, a.vxnets(), vids, storedBase)
	if err != nil {
		return nil, err
	}
	rt, err := lookupOne(r, a.routers, rid, rtBase)
	if err != nil {
		return nil, err
	}
	if err := rt.need("left", "active", "poweroffed"); err != nil {
		return nil, err
	}
	for _, v := range vxs {
		if j := a.joins[v.id]; j == nil || j.msg.GetRouterId() != rt.id {
			return nil, errDenied("vxnet [%s] is not joined to router [%s]", v.id, rt.id)
		}
		if n := len(a.vxnetInstances(r, v.id)); n > 0 {
			return nil, errDenied("vxnet [%s] still has %d instances, can not leave router", v.id, n)
		}
	}
	j := a.newJob(r, append(append([]string{}, vids...), rt.id))
	a.begin(&rt.base, j, 0, 1, op{transition: "updating", ok: func() {
		for _, v := range vxs {
			delete(a.joins, v.id)
		}
	}}, remover(a, a.routers, rt.id))
	return result{"vxnets": vids, "router_id": rt.id, "job_id": j.id}, nil
}

func modifyRouterAttributes(a *account, r *request) (result, *apiError) {
	id, err := r.required("router")
	if err != nil {
		return nil, err
	}
	rt, err := lookupOne(r, a.routers, id, rtBase)
	if err != nil {
		return nil, err
	}
	if err := rt.alive(); err != nil {
		return nil, err
	}
	if _, err := r.integer("features", 0); err != nil {
		return nil, err
	}
	if sid := strings.TrimSpace(r.str("security_group")); sid != "" {
		sg, err := a.findSecurityGroup(r, sid)
		if err != nil {
			return nil, err
		}
		rt.sgID, rt.applied = sg.id, false
	}
	if eid := strings.TrimSpace(r.str("eip")); eid != "" {
		e, err := lookupOne(r, a.eips(), eid, storedBase)
		if err != nil {
			return nil, err
		}
		if eipMsg(e).GetResource().GetResourceId() != rt.id {
			if err := e.need("associated", "available"); err != nil {
				return nil, err
			}
			if old := a.eips()[rt.eipID]; old != nil {
				a.unlinkEip(old)
				old.status = "available"
			}
			a.linkEip(e, "router", rt.id, rt.name)
			e.status, e.statusTime = "associated", r.now
			rt.eipID, rt.applied = e.id, false
		}
	}
	rt.modify(r, "router_name")
	return result{}, nil
}

func describeRouterVxnets(a *account, r *request) (result, *apiError) {
	id, err := r.required("router")
	if err != nil {
		return nil, err
	}
	if _, err := r.flag("verbose"); err != nil {
		return nil, err
	}
	rt, err := lookupOne(r, a.routers, id, rtBase)
	if err != nil {
		return nil, err
	}
	vx := strings.TrimSpace(r.str("vxnet"))
	var items []*stored
	for _, v := range a.routerVxnets(rt.id) {
		if vx == "" || v.id == vx {
			items = append(items, v)
		}
	}
	return describeResult(r, "router_vxnet_set", items, func(v *stored) map[string]any {
		return render(a.joins[v.id].msg.ProtoReflect())
	})
}
