package emulator

import (
	"strings"

	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// Security groups and their rules are kinds of the generic store: CreateSecurityGroup,
// DescribeSecurityGroups, ModifySecurityGroupAttributes, DeleteSecurityGroups,
// DescribeSecurityGroupRules, ModifySecurityGroupRuleAttributes and DeleteSecurityGroupRules are
// answered there, with the hooks of the rows below. This file keeps what the descriptors cannot say:
// rules are the objects of AddSecurityGroupRules, ApplySecurityGroup moves instances to a group, a
// group lists the instances that use it and can not be deleted while in use or the default one.
// A group's is_applied turns 0 when its rules change and 1 when an ApplySecurityGroup job ends.

func init() {
	register("ApplySecurityGroup", applySecurityGroup)
	register("AddSecurityGroupRules", addSecurityGroupRules)
}

// securityGroupRow is the generic store's row of security groups.
var securityGroupRow = kindRow{prefix: "sg",
	create: func(a *account, r *request, s *stored, _ int, _ result) *apiError {
		m := sgMsg(s)
		m.IsApplied, m.IsDefault = proto.Int32(0), proto.Int32(0)
		return nil
	},
	deletable: func(a *account, s *stored) *apiError {
		if sgMsg(s).GetIsDefault() == 1 {
			return errDenied("security_group [%s] is the default security group, can not be deleted", s.id)
		}
		if a.sgInUse(s.id) {
			return errDenied("security_group [%s] is in use, can not be deleted", s.id)
		}
		return nil
	},
	verbs: map[string]verbRule{"Delete": {done: func(a *account, r *request, s *stored) {
		for id, rule := range a.sgRules() {
			if sgRuleMsg(rule).GetSecurityGroupId() == s.id {
				delete(a.sgRules(), id)
			}
		}
	}}},
	describe: func(a *account, r *request, s *stored, out *object) {
		res := []any{}
		for _, inst := range filterSorted(a.instances(), func(i *stored) bool {
			return instSG(i) == s.id && !terminal(i.status)
		}) {
			res = append(res, map[string]any{"resource_id": inst.id, "resource_name": inst.name, "resource_type": "instance"})
		}
		out.set("resources", res)
	},
}

// sgRuleRow is the generic store's row of security group rules: ordered by priority, in the zone
// of their group, and a change makes the group not applied.
var sgRuleRow = kindRow{prefix: "sgr",
	less: func(x, y *stored) bool {
		px, py := sgRuleMsg(x).GetPriority(), sgRuleMsg(y).GetPriority()
		return px < py || px == py && x.id < y.id
	},
	verbs: map[string]verbRule{
		"Modify": {check: func(a *account, r *request, s *stored) *apiError {
			if _, err := r.oneOf("rule_action", "accept", "accept", "drop"); err != nil {
				return err
			}
			if g := strings.TrimSpace(r.str("security_group")); g != "" && g != sgRuleMsg(s).GetSecurityGroupId() {
				return errDenied("security_group_rule [%s] is not a rule of security_group [%s]", s.id, clip(g))
			}
			return nil
		}, done: func(a *account, r *request, s *stored) {
			if act := strings.TrimSpace(r.str("rule_action")); act != "" {
				sgRuleMsg(s).Action = proto.String(act)
			}
			a.unapply(s)
		}},
		"Delete": {done: func(a *account, r *request, s *stored) { a.unapply(s) }},
	},
}

// unapply marks the group of a changed rule not applied.
func (a *account) unapply(rule *stored) {
	if sg := a.securityGroups()[sgRuleMsg(rule).GetSecurityGroupId()]; sg != nil {
		sgMsg(sg).IsApplied = proto.Int32(0)
	}
}

// securityGroups returns the security groups of the account by id.
func (a *account) securityGroups() map[string]*stored { return a.storeNamed("security_group") }

// sgRules returns the security group rules of the account by id.
func (a *account) sgRules() map[string]*stored { return a.storeNamed("security_group_rule") }

// sgMsg returns the item message of a stored security group.
func sgMsg(s *stored) *iaasv1.SecurityGroup { return s.msg.(*iaasv1.SecurityGroup) }

// sgRuleMsg returns the item message of a stored security group rule.
func sgRuleMsg(s *stored) *iaasv1.SecurityGroupRule { return s.msg.(*iaasv1.SecurityGroupRule) }

// findSecurityGroup looks a security group up in the request zone (2100 if unknown).
func (a *account) findSecurityGroup(r *request, id string) (*stored, *apiError) {
	return lookupOne(r, a.securityGroups(), id)
}

// addSecurityGroup stores a security group of b (its id, zone and times set) and returns it.
func (a *account) addSecurityGroup(b base, isDefault bool) *stored {
	k := storeKinds()["security_group"]
	sg := &stored{base: b, kind: k, msg: &iaasv1.SecurityGroup{IsApplied: proto.Int32(int32(b2i(isDefault))),
		IsDefault: proto.Int32(int32(b2i(isDefault)))}}
	sg.base.kind = k.Name
	a.securityGroups()[sg.id] = sg
	return sg
}

// addRule stores rule m of security group sg, named name.
func (a *account) addRule(sg *stored, name string, m *iaasv1.SecurityGroupRule) string {
	k := storeKinds()["security_group_rule"]
	m.SecurityGroupId = proto.String(sg.id)
	rule := &stored{base: base{kind: k.Name, id: a.newID(k.prefix), name: name, zone: sg.zone, created: sg.created,
		statusTime: sg.created}, kind: k, msg: m}
	a.sgRules()[rule.id] = rule
	return rule.id
}

// sgInUse reports whether a live resource uses the security group.
func (a *account) sgInUse(id string) bool {
	for _, inst := range a.instances() {
		if instSG(inst) == id && !terminal(inst.status) {
			return true
		}
	}
	for _, lb := range a.loadbalancers() {
		if lbMsg(lb).GetSecurityGroupId() == id && !terminal(lb.status) {
			return true
		}
	}
	for _, rt := range a.routers() {
		if routerMsg(rt).GetSecurityGroupId() == id && !terminal(rt.status) {
			return true
		}
	}
	return false
}

func applySecurityGroup(a *account, r *request) (result, *apiError) {
	id, err := r.required("security_group")
	if err != nil {
		return nil, err
	}
	sg, err := a.findSecurityGroup(r, id)
	if err != nil {
		return nil, err
	}
	if err := sg.idle(); err != nil {
		return nil, err
	}
	insts, err := lookup(r, a.instances(), r.list("instances"))
	if err != nil {
		return nil, err
	}
	for _, inst := range insts {
		if err := inst.alive(); err != nil {
			return nil, err
		}
	}
	j := a.newJob(r, append([]string{sg.id}, ids(insts)...))
	prev := make(map[*stored]*iaasv1.SecurityGroup, len(insts))
	for _, inst := range insts {
		prev[inst] = instMsg(inst).SecurityGroup
		instMsg(inst).SecurityGroup = &iaasv1.SecurityGroup{SecurityGroupId: proto.String(sg.id)}
	}
	a.begin(&sg.base, j, 0, 1, op{label: "applying",
		ok: func() { sgMsg(sg).IsApplied = proto.Int32(1) },
		undo: func() {
			for inst, old := range prev {
				instMsg(inst).SecurityGroup = old
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
	sg, err := a.findSecurityGroup(r, id)
	if err != nil {
		return nil, err
	}
	rules := make([]*iaasv1.SecurityGroupRule, len(objs))
	for i, o := range objs {
		proto_ := strings.TrimSpace(o["protocol"])
		if proto_ == "" {
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
		rules[i] = &iaasv1.SecurityGroupRule{Protocol: proto.String(proto_), Priority: proto.Int32(int32(prio)),
			Action: proto.String(act), Direction: proto.Int32(int32(dir)), Val1: proto.String(o["val1"]),
			Val2: proto.String(o["val2"]), Val3: proto.String(o["val3"])}
	}
	out := make([]string, len(rules))
	for i, m := range rules {
		out[i] = a.addRule(sg, objs[i]["security_group_rule_name"], m)
	}
	sgMsg(sg).IsApplied = proto.Int32(0)
	return result{"security_group_rules": out}, nil
}
