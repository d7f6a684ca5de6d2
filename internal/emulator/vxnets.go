package emulator

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// vxnet0 is the basic network every account can use in every zone.
const vxnet0 = "vxnet-0"

// Vxnets are a kind of the generic store: CreateVxnets, DescribeVxnets, ModifyVxnetAttributes and
// DeleteVxnets are answered there, with the hooks of vxnetRow. This file keeps their relations:
// instances join and leave them (their NICs), a managed vxnet joins a router (a routerJoin), and a
// vxnet lists its instances and its router. Types: 0 unmanaged, 1 managed, 2 the basic network
// vxnet-0, which has no zone (it is in every zone) and can not be changed. Vxnets have no status;
// a deleted vxnet disappears at once.

// vxnetRow is the generic store's row of vxnets.
var vxnetRow = kindRow{prefix: "vxnet", system: "the basic network",
	create: func(a *account, r *request, s *stored, _ int, _ result) *apiError {
		m := vxnetMsg(s)
		if t := m.GetVxnetType(); t != 0 && t != 1 {
			return errInvalid("parameter [vxnet_type] should be 0 or 1, got [%d]", t)
		}
		m.VpcRouterId, m.AvailableIpCount = proto.String(""), proto.Int32(0)
		return nil
	},
	deletable: func(a *account, s *stored) *apiError {
		if n := len(a.vxnetInstances(nil, s.id)); n > 0 {
			return errDenied("vxnet [%s] still has %d instances, can not be deleted", s.id, n)
		}
		if j := a.joins[s.id]; j != nil {
			return errDenied("vxnet [%s] is joined to router [%s], can not be deleted", s.id, j.msg.GetRouterId())
		}
		return nil
	},
	describe: func(a *account, r *request, s *stored, out *object) {
		if s.zone == "" {
			out.set("zone_id", a.createZone(r))
		}
		ids := []string{}
		for _, inst := range a.vxnetInstances(r, s.id) {
			ids = append(ids, inst.id)
		}
		out.set("instance_ids", ids)
		if j := a.joins[s.id]; j != nil {
			rt := a.routers()[j.msg.GetRouterId()]
			out.set("router", map[string]any{"router_id": rt.id, "router_name": rt.name, "manager_ip": j.msg.GetManagerIp(),
				"ip_network": j.msg.GetIpNetwork(), "dyn_ip_start": j.msg.GetDynIpStart(), "dyn_ip_end": j.msg.GetDynIpEnd(), "mode": 0})
			out.set("vpc_router_id", rt.id)
			out.set("available_ip_count", max(0, 252-len(ids)))
		}
	},
}

// vxnets returns the vxnets of the account by id (vxnet-0 included).
func (a *account) vxnets() map[string]*stored { return a.storeNamed("vxnet") }

// vxnetMsg returns the item message of a stored vxnet.
func vxnetMsg(s *stored) *iaasv1.Vxnet { return s.msg.(*iaasv1.Vxnet) }

// routerJoin is a managed vxnet's join to a router: the generated RouterVxnet that
// DescribeRouterVxnets answers, and the next host address to hand out in its ip_network.
type routerJoin struct {
	msg      *iaasv1.RouterVxnet
	nextHost int
}

// nextIP hands out the next host address of the join's ip_network (from .2; .1 is the router).
func (j *routerJoin) nextIP() string {
	p, err := netip.ParsePrefix(j.msg.GetIpNetwork())
	if err != nil {
		return ""
	}
	addr := p.Masked().Addr()
	if j.nextHost < 2 {
		j.nextHost = 2
	}
	for i := 0; i < j.nextHost; i++ {
		addr = addr.Next()
	}
	j.nextHost++
	if !p.Contains(addr) {
		return ""
	}
	return addr.String()
}

func init() {
	register("JoinVxnet", joinVxnet)
	register("LeaveVxnet", leaveVxnet)
	register("DescribeVxnetInstances", describeVxnetInstances)
}

// seedBasicNetwork stores the account's vxnet-0: no zone, so it is in every zone, and owned by the
// system.
func (a *account) seedBasicNetwork() {
	k := storeKinds()["vxnet"]
	a.vxnets()[vxnet0] = &stored{base: base{kind: k.Name, id: vxnet0, name: "Basic Network", created: catalogEpoch,
		statusTime: catalogEpoch}, kind: k, msg: &iaasv1.Vxnet{VxnetType: proto.Int32(2), Owner: proto.String("system"),
		VpcRouterId: proto.String(""), AvailableIpCount: proto.Int32(0)}}
}

// findVxnet looks a vxnet up in the request zone; vxnet-0 is in every zone.
func (a *account) findVxnet(r *request, id string) (*stored, *apiError) {
	if id == vxnet0 {
		return a.vxnets()[vxnet0], nil
	}
	return lookupOne(r, a.vxnets(), id)
}

// vxnetInstances returns the live instances with a nic in vxnet id, within the request zones (r
// nil: in any zone).
func (a *account) vxnetInstances(r *request, id string) []*stored {
	return filterSorted(a.instances(), func(v *stored) bool {
		if r != nil && !r.inZone(v.zone) || terminal(v.status) {
			return false
		}
		return hasNic(v, id)
	})
}

// vxnetMembers parses vxnet and instances.N of JoinVxnet/LeaveVxnet.
func vxnetMembers(a *account, r *request) (*stored, []*stored, *apiError) {
	id, err := r.required("vxnet")
	if err != nil {
		return nil, nil, err
	}
	ids, err := r.requiredList("instances")
	if err != nil {
		return nil, nil, err
	}
	v, err := a.findVxnet(r, id)
	if err != nil {
		return nil, nil, err
	}
	insts, err := lookup(r, a.instances(), ids)
	if err != nil {
		return nil, nil, err
	}
	return v, insts, nil
}

func hasNic(inst *stored, vxnetID string) bool {
	return slices.ContainsFunc(instMsg(inst).Vxnets, func(n *iaasv1.NicVxnet) bool { return n.GetVxnetId() == vxnetID })
}

func joinVxnet(a *account, r *request) (result, *apiError) {
	v, insts, err := vxnetMembers(a, r)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(insts))
	for i, inst := range insts {
		if err := inst.need("joined to a vxnet", "running", "stopped"); err != nil {
			return nil, err
		}
		if hasNic(inst, v.id) {
			return nil, errDenied("instance [%s] is already in vxnet [%s]", inst.id, v.id)
		}
		ids[i] = inst.id
	}
	j := a.newJob(r, append([]string{v.id}, ids...))
	for i, inst := range insts {
		inst := inst
		n := a.newNic(v, "", j.end)
		instMsg(inst).Vxnets = append(instMsg(inst).Vxnets, n)
		a.begin(&inst.base, j, i, len(insts), op{label: "joining vxnet", undo: func() {
			a.dropNics(inst, func(x *iaasv1.NicVxnet) bool { return x == n })
		}}, a.remover(inst))
	}
	return result{"job_id": j.id}, nil
}

func leaveVxnet(a *account, r *request) (result, *apiError) {
	v, insts, err := vxnetMembers(a, r)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(insts))
	for i, inst := range insts {
		if err := inst.need("removed from a vxnet", "running", "stopped"); err != nil {
			return nil, err
		}
		if !hasNic(inst, v.id) {
			return nil, errDenied("instance [%s] is not in vxnet [%s]", inst.id, v.id)
		}
		ids[i] = inst.id
	}
	j := a.newJob(r, append([]string{v.id}, ids...))
	for i, inst := range insts {
		inst := inst
		a.begin(&inst.base, j, i, len(insts), op{label: "leaving vxnet", ok: func() {
			inVxnet := func(x *iaasv1.NicVxnet) bool { return x.GetVxnetId() == v.id }
			a.freeNics(inst, inVxnet)
			a.dropNics(inst, inVxnet)
		}}, a.remover(inst))
	}
	return result{"job_id": j.id}, nil
}

func describeVxnetInstances(a *account, r *request) (result, *apiError) {
	id, err := r.required("vxnet")
	if err != nil {
		return nil, err
	}
	if _, err := a.findVxnet(r, id); err != nil {
		return nil, err
	}
	idOK := idFilter(r.list("instances"))
	typ, status, img := strings.TrimSpace(r.str("instance_type")), strings.TrimSpace(r.str("status")),
		strings.TrimSpace(r.str("image"))
	var items []*stored
	for _, inst := range a.vxnetInstances(r, id) {
		if m := instMsg(inst); idOK(inst.id) && (typ == "" || m.GetInstanceType() == typ) && (status == "" || inst.status == status) &&
			(img == "" || m.GetImage().GetImageId() == img) {
			items = append(items, inst)
		}
	}
	return describeResult(r, "instance_set", items, func(v *stored) *object {
		out := a.renderStored(v)
		describeInstance(a, r, v, out)
		return out
	})
}

// ipInNetwork reports whether ip is a host address of network.
func ipInNetwork(ip, network string) bool {
	p, err := netip.ParsePrefix(network)
	if err != nil {
		return false
	}
	addr, err := netip.ParseAddr(ip)
	return err == nil && p.Contains(addr)
}

// defaultIPs returns the manager IP and DHCP range of a /24-or-larger network.
func defaultIPs(network string) (manager, start, end string, err error) {
	p, perr := netip.ParsePrefix(network)
	if perr != nil || !p.Addr().Is4() || p.Bits() > 28 || p.Bits() < 16 {
		return "", "", "", fmt.Errorf("ip_network [%s] should be an IPv4 network like 192.168.1.0/24", clip(network))
	}
	base := p.Masked().Addr().As4()
	manager = netip.AddrFrom4([4]byte{base[0], base[1], base[2], base[3] + 1}).String()
	start = netip.AddrFrom4([4]byte{base[0], base[1], base[2], base[3] + 2}).String()
	last := p.Masked().Addr()
	for i := 0; i < (1<<(32-p.Bits()))-2; i++ {
		last = last.Next()
	}
	return manager, start, last.String(), nil
}
