package emulator

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// vxnet0 is the basic network every account can use in every zone.
const vxnet0 = "vxnet-0"

// vxnet: type 0 unmanaged, 1 managed, 2 the basic network vxnet-0. Vxnets have no status; a
// deleted vxnet disappears at once.
type vxnet struct {
	base
	vxnetType int
	routerID  string
	ipNetwork string
	managerIP string
	dynStart  string
	dynEnd    string
	features  int
	joinedAt  time.Time
	nextHost  int
}

func vxBase(v *vxnet) *base { return &v.base }

// nextIP hands out the next host address of the vxnet's ip_network (from .2; .1 is the router).
func (v *vxnet) nextIP() string {
	p, err := netip.ParsePrefix(v.ipNetwork)
	if err != nil {
		return ""
	}
	addr := p.Masked().Addr()
	if v.nextHost < 2 {
		v.nextHost = 2
	}
	for i := 0; i < v.nextHost; i++ {
		addr = addr.Next()
	}
	v.nextHost++
	if !p.Contains(addr) {
		return ""
	}
	return addr.String()
}

// nicRow is the generic store's row of NICs made by CreateNics (an instance's own NICs are part of
// the instance): their id is a MAC address, as QingCloud's, and their private_ip the i-th of
// private_ips.N or the vxnet's next address. The vxnet must exist in the zone.
var nicRow = kindRow{prefix: "nic", status: "available", create: func(a *account, r *request, s *stored, i int, _ result) *apiError {
	v, err := a.findVxnet(r, strings.TrimSpace(r.str("vxnet")))
	if err != nil {
		return err
	}
	n, err := r.count()
	if err != nil {
		return err
	}
	ips := r.list("private_ips")
	if len(ips) > n {
		return errInvalid("parameter [private_ips] has %d addresses for count [%d]", len(ips), n)
	}
	for _, ip := range ips {
		if addr, perr := netip.ParseAddr(ip); perr != nil || !addr.Is4() || v.ipNetwork != "" && !ipInNetwork(ip, v.ipNetwork) {
			return errInvalid("parameter [private_ips]: [%s] is not an address of vxnet [%s]", clip(ip), v.id)
		}
	}
	ip := ""
	if i < len(ips) {
		ip = ips[i]
	} else {
		ip = a.allocIP(v)
	}
	for mac := randomMAC(); ; mac = randomMAC() {
		if a.storeOf(s.kind)[mac] == nil {
			s.id = mac
			break
		}
	}
	s.setStr("vxnet_id", v.id)
	s.setStr("private_ip", ip)
	return nil
}}

type routerRef struct {
	RouterID   string `json:"router_id"`
	RouterName string `json:"router_name"`
	ManagerIP  string `json:"manager_ip"`
	IPNetwork  string `json:"ip_network"`
	DynIPStart string `json:"dyn_ip_start"`
	DynIPEnd   string `json:"dyn_ip_end"`
	Mode       int    `json:"mode"`
}

type vxnetOut struct {
	VxnetID          string     `json:"vxnet_id"`
	VxnetName        string     `json:"vxnet_name"`
	VxnetType        int        `json:"vxnet_type"`
	Description      string     `json:"description"`
	ZoneID           string     `json:"zone_id"`
	CreateTime       jtime      `json:"create_time"`
	InstanceIDs      []string   `json:"instance_ids"`
	Router           *routerRef `json:"router,omitempty"`
	VpcRouterID      string     `json:"vpc_router_id"`
	AvailableIPCount int        `json:"available_ip_count"`
	Owner            string     `json:"owner"`
	Tags             []tagOut   `json:"tags"`
}

func init() {
	register("CreateVxnets", createVxnets)
	register("DescribeVxnets", describeVxnets)
	register("DeleteVxnets", deleteVxnets)
	register("JoinVxnet", joinVxnet)
	register("LeaveVxnet", leaveVxnet)
	register("ModifyVxnetAttributes", modifyVxnetAttributes)
	register("DescribeVxnetInstances", describeVxnetInstances)
}

// basicNetwork returns the account's vxnet-0, creating it on first use.
func (a *account) basicNetwork() *vxnet {
	v := a.vxnets[vxnet0]
	if v == nil {
		v = &vxnet{base: base{kind: "vxnet", id: vxnet0, name: "Basic Network", created: catalogEpoch,
			statusTime: catalogEpoch}, vxnetType: 2}
		a.vxnets[vxnet0] = v
	}
	return v
}

// findVxnet looks a vxnet up in the request zone; vxnet-0 exists in every zone.
func (a *account) findVxnet(r *request, id string) (*vxnet, *apiError) {
	if id == vxnet0 {
		return a.basicNetwork(), nil
	}
	return lookupOne(r, a.vxnets, id, vxBase)
}

// vxnetInstances returns the live instances with a nic in vxnet id, within the request zones.
func (a *account) vxnetInstances(r *request, id string) []*instance {
	return filterSorted(a.instances, instBase, func(v *instance) bool {
		if !r.inZone(v.zone) || terminal(v.status) {
			return false
		}
		return slices.ContainsFunc(v.nics, func(n *nic) bool { return n.vxnetID == id })
	})
}

func createVxnets(a *account, r *request) (result, *apiError) {
	typ, err := r.requiredInt("vxnet_type")
	if err != nil {
		return nil, err
	}
	if typ != 0 && typ != 1 {
		return nil, errInvalid("parameter [vxnet_type] should be 0 or 1, got [%d]", typ)
	}
	count, err := r.count()
	if err != nil {
		return nil, err
	}
	ids := make([]string, count)
	for i := range ids {
		v := &vxnet{base: a.newBase(r, "vxnet", "vxnet", r.str("vxnet_name"), ""), vxnetType: typ}
		a.vxnets[v.id] = v
		ids[i] = v.id
	}
	return result{"vxnets": ids}, nil
}

func describeVxnets(a *account, r *request) (result, *apiError) {
	if _, err := r.flag("verbose"); err != nil {
		return nil, err
	}
	typ, err := r.integer("vxnet_type", -1)
	if err != nil {
		return nil, err
	}
	keep := a.describeFilter(r, "vxnets")
	a.basicNetwork()
	items := filterSorted(a.vxnets, vxBase, func(v *vxnet) bool {
		b := v.base
		if v.id == vxnet0 {
			b.zone = a.createZone(r)
		}
		return keep(&b) && (typ < 0 || v.vxnetType == typ)
	})
	return describeResult(r, "vxnet_set", items, func(v *vxnet) vxnetOut { return a.renderVxnet(r, v) })
}

func (a *account) renderVxnet(r *request, v *vxnet) vxnetOut {
	out := vxnetOut{
		VxnetID: v.id, VxnetName: v.name, VxnetType: v.vxnetType, Description: v.description, ZoneID: v.zone,
		CreateTime: jtime(v.created), InstanceIDs: []string{}, Owner: a.owner, Tags: a.tagsOf(v.id),
	}
	if v.id == vxnet0 {
		out.ZoneID = a.createZone(r)
		out.Owner = "system"
	}
	for _, inst := range a.vxnetInstances(r, v.id) {
		out.InstanceIDs = append(out.InstanceIDs, inst.id)
	}
	if rt := a.routers[v.routerID]; rt != nil {
		out.Router = &routerRef{RouterID: rt.id, RouterName: rt.name, ManagerIP: v.managerIP, IPNetwork: v.ipNetwork,
			DynIPStart: v.dynStart, DynIPEnd: v.dynEnd, Mode: 0}
		out.VpcRouterID = rt.id
		out.AvailableIPCount = max(0, 252-len(out.InstanceIDs))
	}
	return out
}

func deleteVxnets(a *account, r *request) (result, *apiError) {
	ids, err := r.requiredList("vxnets")
	if err != nil {
		return nil, err
	}
	var vxs []*vxnet
	for _, id := range ids {
		if id == vxnet0 {
			return nil, errDenied("vxnet [%s] is the basic network, can not be deleted", id)
		}
		v, err := lookupOne(r, a.vxnets, id, vxBase)
		if err != nil {
			return nil, err
		}
		if err := v.idle(); err != nil {
			return nil, err
		}
		if n := len(a.vxnetInstances(r, id)); n > 0 {
			return nil, errDenied("vxnet [%s] still has %d instances, can not be deleted", id, n)
		}
		if v.routerID != "" {
			return nil, errDenied("vxnet [%s] is joined to router [%s], can not be deleted", id, v.routerID)
		}
		vxs = append(vxs, v)
	}
	for _, v := range vxs {
		delete(a.vxnets, v.id)
		a.dropTags(v.id)
	}
	return result{"vxnets": ids}, nil
}

// vxnetMembers parses vxnet and instances.N of JoinVxnet/LeaveVxnet.
func vxnetMembers(a *account, r *request) (*vxnet, []*instance, *apiError) {
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
	insts, err := lookup(r, a.instances, ids, instBase)
	if err != nil {
		return nil, nil, err
	}
	return v, insts, nil
}

func hasNic(inst *instance, vxnetID string) bool {
	return slices.ContainsFunc(inst.nics, func(n *nic) bool { return n.vxnetID == vxnetID })
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
		inst.nics = append(inst.nics, n)
		a.begin(&inst.base, j, i, len(insts), op{label: "joining vxnet", undo: func() {
			inst.nics = slices.DeleteFunc(inst.nics, func(x *nic) bool { return x == n })
		}}, remover(a, a.instances, inst.id))
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
			inst.nics = slices.DeleteFunc(inst.nics, func(x *nic) bool { return x.vxnetID == v.id })
		}}, remover(a, a.instances, inst.id))
	}
	return result{"job_id": j.id}, nil
}

func modifyVxnetAttributes(a *account, r *request) (result, *apiError) {
	id, err := r.required("vxnet")
	if err != nil {
		return nil, err
	}
	if id == vxnet0 {
		return nil, errDenied("vxnet [%s] is the basic network, can not be modified", id)
	}
	v, err := lookupOne(r, a.vxnets, id, vxBase)
	if err != nil {
		return nil, err
	}
	v.modify(r, "vxnet_name")
	return result{}, nil
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
	var items []*instance
	for _, inst := range a.vxnetInstances(r, id) {
		if idOK(inst.id) && (typ == "" || inst.instanceType == typ) && (status == "" || inst.status == status) &&
			(img == "" || inst.imageID == img) {
			items = append(items, inst)
		}
	}
	return describeResult(r, "instance_set", items, func(v *instance) instanceOut { return a.renderInstance(r, v, false) })
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
