package emulator

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// EIPs are a kind of the generic store (AllocateEips, DescribeEips, ReleaseEips, ChangeEipsBandwidth,
// ChangeEipsBillingMode and ModifyEipAttributes are answered there, with the hooks of its kindRows
// row below); this file keeps their association with instances and the link that load balancers and
// routers use. EIP statuses: pending, available, associated, suspended, released, ceased.

func init() {
	register("AssociateEip", associateEip)
	register("DissociateEips", dissociateEips)
}

// eipRow is the generic store's row of EIPs: valid parameters, an address at allocation (no job:
// available at once), the instance_id filter of DescribeEips, and the statuses each verb needs.
var eipRow = kindRow{prefix: "eip", status: "available", valid: validEip, create: allocateEip,
	filter: func(a *account, r *request, s *stored) bool {
		id := strings.TrimSpace(r.str("instance_id"))
		return id == "" || eipMsg(s).GetResource().GetResourceId() == id
	},
	verbs: map[string]verbRule{"Release": {from: []string{"available"}}, "Change": {from: []string{"available", "associated"}}},
}

// eips returns the EIPs of the account by id.
func (a *account) eips() map[string]*stored { return a.storeNamed("eip") }

// eipMsg returns the item message of a stored EIP.
func eipMsg(s *stored) *iaasv1.Eip { return s.msg.(*iaasv1.Eip) }

// validEip checks the parameters of the EIP actions: bandwidth 1..1000, a known billing mode.
func validEip(r *request) *apiError {
	bw, err := r.integer("bandwidth", 1)
	if err != nil {
		return err
	}
	if bw < 1 || bw > 1000 {
		return errInvalid("parameter [bandwidth] should be between 1 and 1000, got [%d]", bw)
	}
	if _, err := r.oneOf("billing_mode", "", "bandwidth", "traffic"); err != nil {
		return err
	}
	if _, err := r.flag("need_icp"); err != nil {
		return err
	}
	_, err = r.integer("associate_mode", 0)
	return err
}

// allocateEip completes a new EIP: the next public address, and every field QingCloud answers.
func allocateEip(a *account, r *request, s *stored, _ int, _ result) *apiError {
	a.eipSeq++
	m := eipMsg(s)
	m.EipAddr = proto.String(fmt.Sprintf("139.198.%d.%d", 1+(a.eipSeq/250)%250, a.eipSeq%250+2))
	if m.BillingMode == nil {
		m.BillingMode = proto.String("bandwidth")
	}
	mode, _ := r.integer("associate_mode", 0) // not in the spec's request, but QingCloud takes it
	m.NeedIcp, m.AssociateMode = proto.Int32(m.GetNeedIcp()), proto.Int32(int32(mode))
	m.AlarmStatus, m.IcpCodes, m.SubCode = proto.String(""), proto.String(""), proto.Int32(0)
	m.EipGroup = &iaasv1.EipGroup{EipGroupId: proto.String(""), EipGroupName: proto.String("")}
	a.linkEip(s, "", "", "")
	return nil
}

func associateEip(a *account, r *request) (result, *apiError) {
	eid, err := r.required("eip")
	if err != nil {
		return nil, err
	}
	iid, err := r.required("instance")
	if err != nil {
		return nil, err
	}
	e, err := lookupOne(r, a.eips(), eid)
	if err != nil {
		return nil, err
	}
	inst, err := lookupOne(r, a.instances(), iid)
	if err != nil {
		return nil, err
	}
	if err := e.need("associated", "available"); err != nil {
		return nil, err
	}
	if err := inst.need("associated with an eip", "running", "stopped"); err != nil {
		return nil, err
	}
	if id := instMsg(inst).GetEip().GetEipId(); id != "" {
		return nil, errDenied("instance [%s] already has eip [%s]", inst.id, id)
	}
	j := a.newJob(r, []string{e.id, inst.id})
	a.linkEip(e, "instance", inst.id, inst.name)
	instMsg(inst).Eip = &iaasv1.Eip{EipId: proto.String(e.id)}
	a.begin(&e.base, j, 0, 1, op{transition: "associating", to: "associated", undo: func() {
		a.unlinkEip(e)
	}}, a.remover(e))
	return result{"job_id": j.id}, nil
}

// linkEip names the resource an EIP is associated with ("" for none).
func (a *account) linkEip(e *stored, typ, id, name string) {
	eipMsg(e).Resource = &iaasv1.EipResource{ResourceId: proto.String(id), ResourceName: proto.String(name),
		ResourceType: proto.String(typ)}
}

// unlinkEip clears both sides of an EIP association.
func (a *account) unlinkEip(e *stored) {
	res := eipMsg(e).GetResource()
	switch res.GetResourceType() {
	case "instance":
		if inst := a.instances()[res.GetResourceId()]; inst != nil && instMsg(inst).GetEip().GetEipId() == e.id {
			instMsg(inst).Eip = nil
		}
	case "loadbalancer":
		a.dropLBEip(res.GetResourceId(), e.id)
	case "router":
		if rt := a.routers()[res.GetResourceId()]; rt != nil && routerMsg(rt).GetEip().GetEipId() == e.id {
			routerMsg(rt).Eip = nil
		}
	}
	a.linkEip(e, "", "", "")
}

func dissociateEips(a *account, r *request) (result, *apiError) {
	return jobOnEach(a, r, "eips", a.eips(), "dissociated", []string{"associated"}, nil, func(e *stored) op {
		return op{transition: "dissociating", to: "available", ok: func() { a.unlinkEip(e) }}
	})
}

func removeString(l []string, s string) []string {
	out := l[:0:0]
	for _, x := range l {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}
