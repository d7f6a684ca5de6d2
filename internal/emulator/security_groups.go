package emulator

import (
	"strings"
	"time"
)

// securityGroup has no status; is_applied turns 0 when its rules change and 1 when an
// ApplySecurityGroup job completes.
type securityGroup struct {
	base
	isDefault bool
	applied   bool
}

func sgBase(v *securityGroup) *base { return &v.base }

type sgRule struct {
	id        string
	sgID      string
	name      string
	protocol  string
	priority  int
	action    string
	direction int
	val1      string
	val2      string
	val3      string
}

// resourceOut is a resource that another one names (the resource of an EIP, the instances of a
// security group).
type resourceOut struct {
	ResourceID   string `json:"resource_id"`
	ResourceName string `json:"resource_name"`
	ResourceType string `json:"resource_type"`
}

type securityGroupOut struct {
	SecurityGroupID   string        `json:"security_group_id"`
	SecurityGroupName string        `json:"security_group_name"`
	Description       string        `json:"description"`
	IsApplied         int           `json:"is_applied"`
	IsDefault         int           `json:"is_default"`
	CreateTime        jtime         `json:"create_time"`
	Resources         []resourceOut `json:"resources"`
	Tags              []tagOut      `json:"tags"`
}

type sgRuleOut struct {
	SecurityGroupID       string `json:"security_group_id"`
	SecurityGroupRuleID   string `json:"security_group_rule_id"`
	SecurityGroupRuleName string `json:"security_group_rule_name"`
	Direction             int    `json:"direction"`
	Priority              int    `json:"priority"`
	Protocol              string `json:"protocol"`
	Action                string `json:"action"`
	Val1                  string `json:"val1"`
	Val2                  string `json:"val2"`
	Val3                  string `json:"val3"`
}

func init() {
	register("CreateSecurityGroup", createSecurityGroup)
	register("DescribeSecurityGroups", describeSecurityGroups)
	register("DeleteSecurityGroups", deleteSecurityGroups)
	register("ModifySecurityGroupAttributes", modifySecurityGroupAttributes)
	register("ApplySecurityGroup", applySecurityGroup)
	register("AddSecurityGroupRules", addSecurityGroupRules)
	register("DescribeSecurityGroupRules", describeSecurityGroupRules)
	register("DeleteSecurityGroupRules", deleteSecurityGroupRules)
	register("ModifySecurityGroupRuleAttributes", modifySecurityGroupRuleAttributes)
}

func createSecurityGroup(a *account, r *request) (result, *apiError) {
	sg := &securityGroup{base: a.newBase(r, "security_group", "sg", r.str("security_group_name"), "")}
	a.sgs[sg.id] = sg
	return result{"security_group_id": sg.id}, nil
}

func describeSecurityGroups(a *account, r *request) (result, *apiError) {
	if _, err := r.integer("verbose", 0); err != nil {
		return nil, err
	}
	keep := a.describeFilter(r, "security_groups")
	items := filterSorted(a.sgs, sgBase, func(v *securityGroup) bool { return keep(&v.base) })
	return describeResult(r, "security_group_set", items, func(v *securityGroup) securityGroupOut {
		out := securityGroupOut{
			SecurityGroupID: v.id, SecurityGroupName: v.name, Description: v.description,
			IsApplied: b2i(v.applied), IsDefault: b2i(v.isDefault), CreateTime: jtime(v.created),
			Resources: []resourceOut{}, Tags: a.tagsOf(v.id),
		}
		for _, inst := range filterSorted(a.instances, instBase, func(i *instance) bool {
			return i.sgID == v.id && !terminal(i.status)
		}) {
			out.Resources = append(out.Resources, resourceOut{ResourceID: inst.id, ResourceName: inst.name, ResourceType: "instance"})
		}
		return out
	})
}

// sgInUse reports whether a live resource uses the security group.
func (a *account) sgInUse(id string) bool {
	for _, inst := range a.instances {
		if inst.sgID == id && !terminal(inst.status) {
			return true
		}
	}
	for _, lb := range a.loadbalancers() {
		if lbMsg(lb).GetSecurityGroupId() == id && !terminal(lb.status) {
			return true
		}
	}
	for _, rt := range a.routers {
		if rt.sgID == id && !terminal(rt.status) {
			return true
		}
	}
	return false
}

func deleteSecurityGroups(a *account, r *request) (result, *apiError) {
	idl, err := r.requiredList("security_groups")
	if err != nil {
		return nil, err
	}
	sgs, err := lookup(r, a.sgs, idl, sgBase)
	if err != nil {
		return nil, err
	}
	for _, sg := range sgs {
		if err := sg.idle(); err != nil {
			return nil, err
		}
		if sg.isDefault {
			return nil, errDenied("security_group [%s] is the default security group, can not be deleted", sg.id)
		}
		if a.sgInUse(sg.id) {
			return nil, errDenied("security_group [%s] is in use, can not be deleted", sg.id)
		}
	}
	for _, sg := range sgs {
		delete(a.sgs, sg.id)
		a.dropTags(sg.id)
		for id, rule := range a.sgRules {
			if rule.sgID == sg.id {
				delete(a.sgRules, id)
			}
		}
	}
	return result{"security_groups": idl}, nil
}

func modifySecurityGroupAttributes(a *account, r *request) (result, *apiError) {
	id, err := r.required("security_group")
	if err != nil {
		return nil, err
	}
	sg, err := lookupOne(r, a.sgs, id, sgBase)
	if err != nil {
		return nil, err
	}
	sg.modify(r, "security_group_name")
	return result{"security_group_id": sg.id}, nil
}

func applySecurityGroup(a *account, r *request) (result, *apiError) {
	id, err := r.required("security_group")
	if err != nil {
		return nil, err
	}
	sg, err := lookupOne(r, a.sgs, id, sgBase)
	if err != nil {
		return nil, err
	}
	if err := sg.idle(); err != nil {
		return nil, err
	}
	insts, err := lookup(r, a.instances, r.list("instances"), instBase)
	if err != nil {
		return nil, err
	}
	for _, inst := range insts {
		if err := inst.alive(); err != nil {
			return nil, err
		}
	}
	j := a.newJob(r, append([]string{sg.id}, ids(insts, instBase)...))
	prev := make(map[*instance]string, len(insts))
	for _, inst := range insts {
		prev[inst] = inst.sgID
		inst.sgID = sg.id
	}
	a.begin(&sg.base, j, 0, 1, op{label: "applying",
		ok: func() { sg.applied = true },
		undo: func() {
			for inst, old := range prev {
				inst.sgID = old
			}
		}}, nil)
	return result{"job_id": j.id}, nil
}

func addSecurityGroupRules(a *account, r *request) (result, *apiError) {
	id, err := r.required("security_group")
	if err != nil {
		return nil, err
	}
	objs := r.objects("rules")
	if len(objs) == 0 {
		return nil, errMissing("rules.1.protocol")
	}
	sg, err := lookupOne(r, a.sgs, id, sgBase)
	if err != nil {
		return nil, err
	}
	var rules []*sgRule
	for _, o := range objs {
		proto := strings.TrimSpace(o["protocol"])
		if proto == "" {
			return nil, errMissing("rules.N.protocol")
		}
		prio, err := objInt(o, "rules", "priority", 0)
		if err != nil {
			return nil, err
		}
		if prio < 0 || prio > 100 {
			return nil, errInvalid("parameter [rules.N.priority] should be between 0 and 100, got [%d]", prio)
		}
		dir, err := objInt(o, "rules", "direction", 0)
		if err != nil {
			return nil, err
		}
		if dir != 0 && dir != 1 {
			return nil, errInvalid("parameter [rules.N.direction] should be 0 or 1, got [%d]", dir)
		}
		act := strings.TrimSpace(o["action"])
		if act == "" {
			act = "accept"
		}
		if act != "accept" && act != "drop" {
			return nil, errInvalid("parameter [rules.N.action] should be accept or drop, got [%s]", clip(act))
		}
		rules = append(rules, &sgRule{sgID: sg.id, name: o["security_group_rule_name"], protocol: proto, priority: prio,
			action: act, direction: dir, val1: o["val1"], val2: o["val2"], val3: o["val3"]})
	}
	out := make([]string, len(rules))
	for i, rule := range rules {
		rule.id = a.newID("sgr")
		a.sgRules[rule.id] = rule
		out[i] = rule.id
	}
	sg.applied = false
	return result{"security_group_rules": out}, nil
}

func describeSecurityGroupRules(a *account, r *request) (result, *apiError) {
	dir, err := r.integer("direction", -1)
	if err != nil {
		return nil, err
	}
	sgID := strings.TrimSpace(r.str("security_group"))
	idOK := idFilter(r.list("security_group_rules"))
	var items []*sgRule
	for _, rule := range a.sgRules {
		sg := a.sgs[rule.sgID]
		if sg == nil || !r.inZone(sg.zone) || !idOK(rule.id) || (sgID != "" && rule.sgID != sgID) ||
			(dir >= 0 && rule.direction != dir) {
			continue
		}
		items = append(items, rule)
	}
	// Rules have no create time: order by priority, then id.
	sortByCreated(items, func(v *sgRule) time.Time { return time.Unix(int64(-v.priority), 0) },
		func(v *sgRule) string { return v.id })
	return describeResult(r, "security_group_rule_set", items, func(v *sgRule) sgRuleOut {
		return sgRuleOut{SecurityGroupID: v.sgID, SecurityGroupRuleID: v.id, SecurityGroupRuleName: v.name,
			Direction: v.direction, Priority: v.priority, Protocol: v.protocol, Action: v.action,
			Val1: v.val1, Val2: v.val2, Val3: v.val3}
	})
}

// findRule looks a rule up in the request zone.
func (a *account) findRule(r *request, id string) (*sgRule, *apiError) {
	rule := a.sgRules[id]
	if rule == nil {
		return nil, errNotFound(id)
	}
	if sg := a.sgs[rule.sgID]; sg == nil || !r.inZone(sg.zone) {
		return nil, errNotFound(id)
	}
	return rule, nil
}

func deleteSecurityGroupRules(a *account, r *request) (result, *apiError) {
	idl, err := r.requiredList("security_group_rules")
	if err != nil {
		return nil, err
	}
	for _, id := range idl {
		if _, err := a.findRule(r, id); err != nil {
			return nil, err
		}
	}
	for _, id := range idl {
		if sg := a.sgs[a.sgRules[id].sgID]; sg != nil {
			sg.applied = false
		}
		delete(a.sgRules, id)
	}
	return result{"security_group_rules": idl}, nil
}

func modifySecurityGroupRuleAttributes(a *account, r *request) (result, *apiError) {
	id, err := r.required("security_group_rule")
	if err != nil {
		return nil, err
	}
	rule, err := a.findRule(r, id)
	if err != nil {
		return nil, err
	}
	prio, err := r.integer("priority", rule.priority)
	if err != nil {
		return nil, err
	}
	dir, err := r.integer("direction", rule.direction)
	if err != nil {
		return nil, err
	}
	act, err := r.oneOf("rule_action", rule.action, "accept", "drop")
	if err != nil {
		return nil, err
	}
	rule.priority, rule.direction, rule.action = prio, dir, act
	for name, dst := range map[string]*string{
		"security_group_rule_name": &rule.name, "protocol": &rule.protocol,
		"val1": &rule.val1, "val2": &rule.val2, "val3": &rule.val3,
	} {
		if r.has(name) {
			*dst = strings.TrimSpace(r.str(name))
		}
	}
	if sg := a.sgs[rule.sgID]; sg != nil {
		sg.applied = false
	}
	return result{"security_group_rule_id": rule.id}, nil
}
