package emulator

import "fmt"

// eip statuses: pending, available, associated, suspended, released, ceased.
type eip struct {
	base
	addr          string
	bandwidth     int
	billingMode   string
	needICP       int
	associateMode int
	resourceID    string
	resourceType  string
	resourceName  string
}

func eipBase(v *eip) *base { return &v.base }

type eipGroupOut struct {
	EipGroupID   string `json:"eip_group_id"`
	EipGroupName string `json:"eip_group_name"`
}

type eipOut struct {
	EipID            string      `json:"eip_id"`
	EipName          string      `json:"eip_name"`
	Description      string      `json:"description"`
	EipAddr          string      `json:"eip_addr"`
	Bandwidth        int         `json:"bandwidth"`
	BillingMode      string      `json:"billing_mode"`
	Status           string      `json:"status"`
	TransitionStatus string      `json:"transition_status"`
	ICPCodes         string      `json:"icp_codes"`
	CreateTime       jtime       `json:"create_time"`
	StatusTime       jtime       `json:"status_time"`
	Resource         resourceOut `json:"resource"`
	EipGroup         eipGroupOut `json:"eip_group"`
	AlarmStatus      string      `json:"alarm_status"`
	AssociateMode    int         `json:"associate_mode"`
	NeedICP          int         `json:"need_icp"`
	SubCode          int         `json:"sub_code"`
	Tags             []tagOut    `json:"tags"`
}

func init() {
	register("AllocateEips", allocateEips)
	register("DescribeEips", describeEips)
	register("AssociateEip", associateEip)
	register("DissociateEips", dissociateEips)
	register("ReleaseEips", releaseEips)
	register("ChangeEipsBandwidth", changeEipsBandwidth)
	register("ChangeEipsBillingMode", changeEipsBillingMode)
	registerNoZone("ModifyEipAttributes", modifyEipAttributes)
}

func validBandwidth(bw int) *apiError {
	if bw < 1 || bw > 1000 {
		return errInvalid("parameter [bandwidth] should be between 1 and 1000, got [%d]", bw)
	}
	return nil
}

// allocateEips is real-time (no job): the EIPs are available at once.
func allocateEips(a *account, r *request) (result, *apiError) {
	bw, err := r.requiredInt("bandwidth")
	if err != nil {
		return nil, err
	}
	if err := validBandwidth(bw); err != nil {
		return nil, err
	}
	mode, err := r.oneOf("billing_mode", "bandwidth", "bandwidth", "traffic")
	if err != nil {
		return nil, err
	}
	icp, err := r.flag("need_icp")
	if err != nil {
		return nil, err
	}
	assoc, err := r.integer("associate_mode", 0)
	if err != nil {
		return nil, err
	}
	count, err := r.count()
	if err != nil {
		return nil, err
	}
	ids := make([]string, count)
	for i := range ids {
		a.eipSeq++
		e := &eip{base: a.newBase(r, "eip", "eip", r.str("eip_name"), "available"), bandwidth: bw, billingMode: mode,
			needICP: b2i(icp), associateMode: assoc,
			addr: fmt.Sprintf("139.198.%d.%d", 1+(a.eipSeq/250)%250, a.eipSeq%250+2)}
		a.eips[e.id] = e
		ids[i] = e.id
	}
	return result{"eips": ids}, nil
}

func describeEips(a *account, r *request) (result, *apiError) {
	if _, err := r.integer("verbose", 0); err != nil {
		return nil, err
	}
	keep := a.describeFilter(r, "eips")
	inst := r.str("instance_id")
	items := filterSorted(a.eips, eipBase, func(v *eip) bool {
		return keep(&v.base) && (inst == "" || v.resourceID == inst)
	})
	return describeResult(r, "eip_set", items, func(v *eip) eipOut { return a.renderEip(v) })
}

func (a *account) renderEip(v *eip) eipOut {
	return eipOut{
		EipID: v.id, EipName: v.name, Description: v.description, EipAddr: v.addr, Bandwidth: v.bandwidth,
		BillingMode: v.billingMode, Status: v.status, TransitionStatus: v.transition, CreateTime: jtime(v.created),
		StatusTime: jtime(v.statusTime), AssociateMode: v.associateMode, NeedICP: v.needICP, Tags: a.tagsOf(v.id),
		Resource: resourceOut{ResourceID: v.resourceID, ResourceName: v.resourceName, ResourceType: v.resourceType},
	}
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
	e, err := lookupOne(r, a.eips, eid, eipBase)
	if err != nil {
		return nil, err
	}
	inst, err := lookupOne(r, a.instances, iid, instBase)
	if err != nil {
		return nil, err
	}
	if err := e.need("associated", "available"); err != nil {
		return nil, err
	}
	if err := inst.need("associated with an eip", "running", "stopped"); err != nil {
		return nil, err
	}
	if inst.eipID != "" {
		return nil, errDenied("instance [%s] already has eip [%s]", inst.id, inst.eipID)
	}
	j := a.newJob(r, []string{e.id, inst.id})
	a.linkEip(e, "instance", inst.id, inst.name)
	inst.eipID = e.id
	a.begin(&e.base, j, 0, 1, op{transition: "associating", to: "associated", undo: func() {
		a.unlinkEip(e)
	}}, remover(a, a.eips, e.id))
	return result{"job_id": j.id}, nil
}

func (a *account) linkEip(e *eip, typ, id, name string) {
	e.resourceType, e.resourceID, e.resourceName = typ, id, name
}

// unlinkEip clears both sides of an EIP association.
func (a *account) unlinkEip(e *eip) {
	switch e.resourceType {
	case "instance":
		if inst := a.instances[e.resourceID]; inst != nil && inst.eipID == e.id {
			inst.eipID = ""
		}
	case "loadbalancer":
		if lb := a.lbs[e.resourceID]; lb != nil {
			lb.eipIDs = removeString(lb.eipIDs, e.id)
		}
	case "router":
		if rt := a.routers[e.resourceID]; rt != nil && rt.eipID == e.id {
			rt.eipID = ""
		}
	}
	e.resourceType, e.resourceID, e.resourceName = "", "", ""
}

func dissociateEips(a *account, r *request) (result, *apiError) {
	return jobOnEach(a, r, "eips", a.eips, eipBase, "dissociated", []string{"associated"}, nil, func(e *eip) op {
		return op{transition: "dissociating", to: "available", ok: func() { a.unlinkEip(e) }}
	})
}

func releaseEips(a *account, r *request) (result, *apiError) {
	return jobOnEach(a, r, "eips", a.eips, eipBase, "released", []string{"available"}, nil, func(*eip) op {
		return op{transition: "releasing", to: "released"}
	})
}

// eipChange is the shape of ChangeEipsBandwidth/ChangeEipsBillingMode: a job, no transition.
func eipChange(a *account, r *request, apply func(*eip)) (result, *apiError) {
	return jobOnEach(a, r, "eips", a.eips, eipBase, "changed", []string{"available", "associated"}, nil, func(e *eip) op {
		return op{label: "updating", ok: func() { apply(e) }}
	})
}

func changeEipsBandwidth(a *account, r *request) (result, *apiError) {
	bw, err := r.requiredInt("bandwidth")
	if err != nil {
		return nil, err
	}
	if err := validBandwidth(bw); err != nil {
		return nil, err
	}
	return eipChange(a, r, func(e *eip) { e.bandwidth = bw })
}

func changeEipsBillingMode(a *account, r *request) (result, *apiError) {
	if _, err := r.required("billing_mode"); err != nil {
		return nil, err
	}
	mode, err := r.oneOf("billing_mode", "", "bandwidth", "traffic")
	if err != nil {
		return nil, err
	}
	return eipChange(a, r, func(e *eip) { e.billingMode = mode })
}

func modifyEipAttributes(a *account, r *request) (result, *apiError) {
	id, err := r.required("eip")
	if err != nil {
		return nil, err
	}
	e, err := lookupOne(r, a.eips, id, eipBase)
	if err != nil {
		return nil, err
	}
	if err := e.alive(); err != nil {
		return nil, err
	}
	e.modify(r, "eip_name")
	return result{"eip_id": e.id}, nil
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
