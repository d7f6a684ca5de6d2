package emulator

import (
	"net/netip"
	"strings"

	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// NICs made by CreateNics are a kind of the generic store (CreateNics, DescribeNics, ModifyNicAttributes
// and DeleteNics are answered there, with the hooks of nicRow); an instance's own NICs, made by
// RunInstances and JoinVxnet, are part of the instance. This file keeps their relation to instances:
// AttachNics attaches available NICs to an instance of their zone (the instance lists them in its
// vxnets, the NIC shows instance_id and turns in-use when the job ends), DetachNics reverses it, and
// an in-use NIC can not be deleted; terminating the instance or LeaveVxnet frees it. NIC statuses:
// available, in-use.

func init() {
	register("AttachNics", attachNics)
	register("DetachNics", detachNics)
}

// nicRow is the generic store's row of NICs: their id is a MAC address, as QingCloud's, and their
// private_ip the i-th of private_ips.N or the vxnet's next address; the vxnet must exist in the zone.
// DescribeNics filters by instances.N and vxnets.N too.
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
		if addr, perr := netip.ParseAddr(ip); perr != nil || !addr.Is4() || a.joins[v.id] != nil && !ipInNetwork(ip, a.joins[v.id].msg.GetIpNetwork()) {
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
	m := nicMsg(s)
	m.VxnetId, m.PrivateIp, m.InstanceId = proto.String(v.id), proto.String(ip), proto.String("")
	return nil
},
	deletable: func(a *account, s *stored) *apiError {
		if s.status == "in-use" {
			return errDenied("nic [%s] is in use by instance [%s], can not be deleted", s.id, nicMsg(s).GetInstanceId())
		}
		return nil
	},
	filter: func(a *account, r *request, s *stored) bool {
		return idFilter(r.list("instances"))(nicMsg(s).GetInstanceId()) && idFilter(r.list("vxnets"))(nicMsg(s).GetVxnetId())
	},
}

// nics returns the stored NICs of the account by id.
func (a *account) nics() map[string]*stored { return a.storeNamed("nic") }

// nicMsg returns the item message of a stored NIC.
func nicMsg(s *stored) *iaasv1.Nic { return s.msg.(*iaasv1.Nic) }

// attachNics attaches available NICs to a running or stopped instance of their zone.
func attachNics(a *account, r *request) (result, *apiError) {
	iid, err := r.required("instance")
	if err != nil {
		return nil, err
	}
	ids, err := r.requiredList("nics")
	if err != nil {
		return nil, err
	}
	inst, err := lookupOne(r, a.instances(), iid)
	if err != nil {
		return nil, err
	}
	nics, err := lookup(r, a.nics(), ids)
	if err != nil {
		return nil, err
	}
	if err := inst.need("attached nics", "running", "stopped"); err != nil {
		return nil, err
	}
	for _, n := range nics {
		if err := n.need("attached", "available"); err != nil {
			return nil, err
		}
		if n.zone != inst.zone {
			return nil, errDenied("nic [%s] is in zone [%s], instance [%s] in zone [%s], can not be attached", n.id, n.zone, inst.id, inst.zone)
		}
	}
	j := a.newJob(r, append([]string{inst.id}, ids...))
	a.begin(&inst.base, j, 0, 1, op{label: "attaching nics"}, a.remover(inst))
	for i, n := range nics {
		m := nicMsg(n)
		m.InstanceId = proto.String(inst.id)
		entry := a.nicAt(&iaasv1.NicVxnet{VxnetId: proto.String(m.GetVxnetId()), NicId: proto.String(n.id), PrivateIp: proto.String(m.GetPrivateIp())}, j.end)
		instMsg(inst).Vxnets = append(instMsg(inst).Vxnets, entry)
		a.begin(&n.base, j, i, len(nics), op{label: "attaching", to: "in-use", undo: func() {
			m.InstanceId = proto.String("")
			a.dropNics(inst, func(x *iaasv1.NicVxnet) bool { return x == entry })
		}}, nil)
	}
	return result{"job_id": j.id}, nil
}

// detachNics detaches in-use NICs from their instances.
func detachNics(a *account, r *request) (result, *apiError) {
	ids, err := r.requiredList("nics")
	if err != nil {
		return nil, err
	}
	nics, err := lookup(r, a.nics(), ids)
	if err != nil {
		return nil, err
	}
	for _, n := range nics {
		if err := n.idle(); err != nil {
			return nil, err
		}
		if n.status != "in-use" {
			return nil, errDenied("nic [%s] is not attached to an instance, can not be detached", n.id)
		}
		if inst := a.instances()[nicMsg(n).GetInstanceId()]; inst != nil {
			if err := inst.idle(); err != nil {
				return nil, err
			}
		}
	}
	j := a.newJob(r, ids)
	for i, n := range nics {
		m := nicMsg(n)
		a.begin(&n.base, j, i, len(nics), op{label: "detaching", to: "available", ok: func() {
			if inst := a.instances()[m.GetInstanceId()]; inst != nil {
				a.dropNics(inst, func(x *iaasv1.NicVxnet) bool { return x.GetNicId() == n.id })
			}
			m.InstanceId = proto.String("")
		}}, nil)
	}
	return result{"job_id": j.id}, nil
}

// freeNics makes the stored NICs of an instance that it loses (terminated, failed to create, or
// leaving their vxnet: those of which) available again; which nil is all of them.
func (a *account) freeNics(inst *stored, which func(*iaasv1.NicVxnet) bool) {
	for _, x := range instMsg(inst).Vxnets {
		if n := a.nics()[x.GetNicId()]; n != nil && nicMsg(n).GetInstanceId() == inst.id && (which == nil || which(x)) {
			nicMsg(n).InstanceId = proto.String("")
			n.status, n.statusTime = "available", inst.statusTime
		}
	}
}
