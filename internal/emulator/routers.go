package emulator

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// Routers are a kind of the generic store: CreateRouters, DescribeRouters, DeleteRouters,
// UpdateRouters, PowerOffRouters, PowerOnRouters and ModifyRouterAttributes are answered there, with
// the hooks of routerRow. This file keeps their relations: managed vxnets join and leave a router
// (a routerJoin each), and a router holds an EIP and a security group. Router statuses: pending,
// active, poweroffed, suspended, deleted, ceased.

func init() {
	register("JoinRouter", joinRouter)
	register("LeaveRouter", leaveRouter)
	register("DescribeRouterVxnets", describeRouterVxnets)
}

// routerRow is the generic store's row of routers.
var routerRow = kindRow{prefix: "rtr",
	valid: func(r *request) *apiError {
		if t, err := r.integer("router_type", 1); err != nil || t < 0 || t > 3 {
			return errInvalid("parameter [router_type] should be between 0 and 3, got [%s]", clip(r.str("router_type")))
		}
		if vpc := strings.TrimSpace(r.str("vpc_network")); vpc != "" {
			if _, _, _, err := defaultIPs(vpc); err != nil {
				return errInvalid("%v", err)
			}
		}
		return nil
	},
	create: func(a *account, r *request, s *stored, _ int, _ result) *apiError {
		m := routerMsg(s)
		if !r.has("router_type") {
			m.RouterType = proto.Int32(1)
		}
		if m.GetVpcNetwork() == "" {
			m.VpcNetwork = proto.String("192.168.0.0/16")
		}
		if m.GetSecurityGroupId() == "" {
			m.SecurityGroupId = proto.String(a.defaultSGs[s.zone])
		}
		a.ipSeq++
		m.PrivateIp = proto.String(fmt.Sprintf("10.70.%d.%d", (a.ipSeq/250)%256, a.ipSeq%250+2))
		m.IsApplied, m.Mode = proto.Int32(1), proto.Int32(0)
		return nil
	},
	deletable: func(a *account, s *stored) *apiError {
		if vs := a.routerVxnets(s.id); len(vs) > 0 {
			return errDenied("router [%s] still has vxnet [%s], can not be deleted", s.id, vs[0].id)
		}
		return nil
	},
	filter: func(a *account, r *request, s *stored) bool {
		vx := strings.TrimSpace(r.str("vxnet"))
		return vx == "" || a.joins[vx] != nil && a.joins[vx].msg.GetRouterId() == s.id
	},
	describe: func(a *account, r *request, s *stored, out *object) {
		eip := map[string]any{"eip_id": "", "eip_addr": ""}
		if e := a.eips()[routerMsg(s).GetEip().GetEipId()]; e != nil {
			eip = map[string]any{"eip_id": e.id, "eip_addr": eipMsg(e).GetEipAddr(), "bandwidth": eipMsg(e).GetBandwidth()}
		}
		vxnets := []any{}
		for _, x := range a.routerVxnets(s.id) {
			vxnets = append(vxnets, map[string]any{"vxnet_id": x.id, "vxnet_name": x.name, "vxnet_type": vxnetMsg(x).GetVxnetType()})
		}
		out.set("eip", eip)
		out.set("vxnets", vxnets)
	},
	verbs: map[string]verbRule{
		"Delete": {from: []string{"active", "poweroffed"}, done: func(a *account, r *request, s *stored) {
			if e := a.eips()[routerMsg(s).GetEip().GetEipId()]; e != nil {
				a.unlinkEip(e)
				e.status = "available"
			}
		}},
		"Update":   {from: []string{"active"}, done: func(a *account, r *request, s *stored) { routerMsg(s).IsApplied = proto.Int32(1) }},
		"PowerOff": {from: []string{"active"}, past: "powered off"},
		"PowerOn":  {from: []string{"poweroffed"}, past: "powered on"},
		"Modify": {check: func(a *account, r *request, s *stored) *apiError {
			if e := a.eips()[strings.TrimSpace(r.str("eip"))]; e != nil && eipMsg(e).GetResource().GetResourceId() != s.id {
				return e.need("associated", "available")
			}
			return nil
		}, done: func(a *account, r *request, s *stored) {
			m := routerMsg(s)
			m.DynIpStart, m.DynIpEnd = nil, nil // a vxnet's, not the router's
			if strings.TrimSpace(r.str("security_group")) != "" {
				m.IsApplied = proto.Int32(0)
			}
			e := a.eips()[strings.TrimSpace(r.str("eip"))]
			if e == nil || eipMsg(e).GetResource().GetResourceId() == s.id {
				return
			}
			if old := a.eips()[m.GetEip().GetEipId()]; old != nil {
				a.unlinkEip(old)
				old.status = "available"
			}
			a.linkEip(e, "router", s.id, s.name)
			e.status, e.statusTime = "associated", r.now
			m.Eip, m.IsApplied = &iaasv1.Eip{EipId: proto.String(e.id)}, proto.Int32(0)
		}},
	},
}

// routers returns the routers of the account by id.
func (a *account) routers() map[string]*stored { return a.storeNamed("router") }

// routerMsg returns the item message of a stored router.
func routerMsg(s *stored) *iaasv1.Router { return s.msg.(*iaasv1.Router) }

// routerVxnets returns the vxnets joined to router id, newest first.
func (a *account) routerVxnets(id string) []*stored {
	return filterSorted(a.vxnets(), func(v *stored) bool {
		return a.joins[v.id] != nil && a.joins[v.id].msg.GetRouterId() == id
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
	v, err := lookupOne(r, a.vxnets(), vid)
	if err != nil {
		return nil, err
	}
	rt, err := lookupOne(r, a.routers(), rid)
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
		a.remover(rt))
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
	vxs, err := lookup(r, a.vxnets(), vids)
	if err != nil {
		return nil, err
	}
	rt, err := lookupOne(r, a.routers(), rid)
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
	}}, a.remover(rt))
	return result{"vxnets": vids, "router_id": rt.id, "job_id": j.id}, nil
}

func describeRouterVxnets(a *account, r *request) (result, *apiError) {
	id, err := r.required("router")
	if err != nil {
		return nil, err
	}
	if _, err := r.flag("verbose"); err != nil {
		return nil, err
	}
	rt, err := lookupOne(r, a.routers(), id)
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
	return describeResult(r, "router_vxnet_set", items, func(v *stored) *object {
		return messageObject(a.joins[v.id].msg)
	})
}
