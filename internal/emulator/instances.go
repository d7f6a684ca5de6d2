package emulator

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// An instance is an item of the store (a *stored whose msg is the generated iaasv1.Instance) that
// the handlers below create and change: its size, image (image_id), NICs (vxnets: nic_id, vxnet_id,
// private_ip), EIP (eip_id), volume_ids, keypair_ids and security group (security_group_id) are
// fields of its item; what they say of the other resources is added when it is rendered.
// Statuses: pending, running, stopped, suspended, terminated, ceased.

// instanceKind is the kind of the stored instances (modelled by the handlers, not storeKinds).
var instanceKind = &storeKind{ResourceKind: api.ResourceKind{Name: "instance", IDParam: "instances",
	SetField: "instance_set", IDField: "instance_id", HasStatus: true}, prefix: "i", status: "running"}

// instances returns the instances of the account by id.
func (a *account) instances() map[string]*stored { return a.storeNamed("instance") }

// instMsg returns the item message of a stored instance.
func instMsg(s *stored) *iaasv1.Instance { return s.msg.(*iaasv1.Instance) }

func init() {
	register("RunInstances", runInstances)
	register("DescribeInstances", describeInstances)
	register("TerminateInstances", terminateInstances)
	register("StartInstances", startInstances)
	register("StopInstances", stopInstances)
	register("RestartInstances", restartInstances)
	register("ResetInstances", resetInstances)
	register("ResizeInstances", resizeInstances)
	register("CeaseInstances", ceaseInstances)
	register("ModifyInstanceAttributes", modifyInstanceAttributes)
}

var validCPU = []int{1, 2, 4, 8, 16}
var validMemory = []int{1024, 2048, 4096, 6144, 8192, 12288, 16384, 24576, 32768}

// sizing parses instance_type or cpu+memory ("if both are given, cpu and memory win").
// It returns ok=false when neither is given.
func sizing(r *request) (typ string, cpu, memory int, ok bool, err *apiError) {
	if cpu, err = r.integer("cpu", 0); err != nil {
		return
	}
	if memory, err = r.integer("memory", 0); err != nil {
		return
	}
	if cpu != 0 || memory != 0 {
		if !slices.Contains(validCPU, cpu) {
			err = errInvalid("parameter [cpu] should be one of %v, got [%d]", validCPU, cpu)
			return
		}
		if !slices.Contains(validMemory, memory) {
			err = errInvalid("parameter [memory] should be one of %v, got [%d]", validMemory, memory)
			return
		}
		return instanceTypeFor(cpu, memory), cpu, memory, true, nil
	}
	typ = strings.TrimSpace(r.str("instance_type"))
	if typ == "" {
		return "", 0, 0, false, nil
	}
	t, found := findInstanceType(typ)
	if !found {
		err = errInvalid("instance_type [%s] is not available", clip(typ))
		return
	}
	return t.id, t.cpu, t.memory, true, nil
}

func runInstances(a *account, r *request) (result, *apiError) {
	imageID, err := r.required("image_id")
	if err != nil {
		return nil, err
	}
	img, err := a.findImage(r, imageID)
	if err != nil {
		return nil, err
	}
	if img.status != "available" || img.busy != "" {
		return nil, errDenied("image [%s] is not available, can not run instances from it", imageID)
	}
	if _, err := r.required("login_mode"); err != nil {
		return nil, err
	}
	mode, err := r.oneOf("login_mode", "", "keypair", "passwd")
	if err != nil {
		return nil, err
	}
	var kp *stored
	if mode == "keypair" {
		id, err := r.required("login_keypair")
		if err != nil {
			return nil, err
		}
		if kp, err = lookupOne(r, a.storeOf(storeKinds()["keypair"]), id, storedBase); err != nil {
			return nil, err
		}
	} else if _, err := r.required("login_passwd"); err != nil {
		return nil, err
	}
	typ, cpu, memory, ok, err := sizing(r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errMissing("instance_type")
	}
	count, err := r.count()
	if err != nil {
		return nil, err
	}
	class, err := r.integer("instance_class", 0)
	if err != nil {
		return nil, err
	}
	diskSize, err := r.integer("os_disk_size", int(imageMsg(img).GetSize()))
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"gpu", "need_newsid", "need_userdata", "cpu_max", "mem_max"} {
		if _, err := r.integer(name, 0); err != nil {
			return nil, err
		}
	}
	type vxnetReq struct {
		v  *stored
		ip string
	}
	var vxReqs []vxnetReq
	for _, entry := range r.list("vxnets") {
		id, ip, _ := strings.Cut(entry, "|")
		v, err := a.findVxnet(r, id)
		if err != nil {
			return nil, err
		}
		vxReqs = append(vxReqs, vxnetReq{v, ip})
	}
	sgID := a.defaultSGs[a.createZone(r)]
	if id := strings.TrimSpace(r.str("security_group")); id != "" {
		sg, err := a.findSecurityGroup(r, id)
		if err != nil {
			return nil, err
		}
		sgID = sg.id
	}
	vols, err := lookup(r, a.volumes(), r.list("volumes"), storedBase)
	if err != nil {
		return nil, err
	}
	if len(vols) > 0 && count > 1 {
		return nil, errInvalid("parameter [volumes] can only be used with count 1")
	}
	for _, v := range vols {
		if err := v.need("attached", "available"); err != nil {
			return nil, err
		}
	}

	insts := make([]*stored, count)
	ids := make([]string, count)
	for i := range insts {
		inst := &stored{base: a.newBase(r, "instance", "i", r.str("instance_name"), "pending"), kind: instanceKind,
			msg: &iaasv1.Instance{InstanceType: proto.String(typ), VcpusCurrent: proto.Int32(int32(cpu)),
				MemoryCurrent: proto.Int64(int64(memory)), InstanceClass: proto.Int32(int32(class)),
				Extra: &iaasv1.Extra{OsDiskSize: proto.Int64(int64(diskSize))}, Image: &iaasv1.Image{ImageId: proto.String(img.id)},
				SecurityGroup: &iaasv1.SecurityGroup{SecurityGroupId: proto.String(sgID)}}}
		insts[i], ids[i] = inst, inst.id
	}
	j := a.newJob(r, ids)
	for i, inst := range insts {
		m := instMsg(inst)
		for _, vr := range vxReqs {
			m.Vxnets = append(m.Vxnets, a.newNic(vr.v, vr.ip, j.end))
		}
		if kp != nil {
			m.KeypairIds = []string{kp.id}
			kp.setStrs("instance_ids", append(kp.strs("instance_ids"), inst.id))
		}
		a.instances()[inst.id] = inst
		a.begin(&inst.base, j, i, count, op{transition: "creating", to: "running", failTo: "ceased",
			undo: func() { a.releaseInstance(inst) }}, remover(a, a.instances(), inst.id))
	}
	if len(vols) > 0 {
		inst := insts[0]
		for i, v := range vols {
			a.attachVolume(v, inst, j, i, len(vols))
		}
	}
	return result{"instances": ids, "job_id": j.id}, nil
}

// newNic creates a NIC of v; its private IP becomes visible at readyAt.
func (a *account) newNic(v *stored, ip string, readyAt time.Time) *iaasv1.NicVxnet {
	if ip == "" {
		ip = a.allocIP(v)
	}
	return a.nicAt(&iaasv1.NicVxnet{VxnetId: proto.String(v.id), NicId: proto.String(randomMAC()), PrivateIp: proto.String(ip)}, readyAt)
}

// nicAt records when the private IP of an instance's NIC becomes visible (when the job that adds it
// ends, and the instance is no longer pending).
func (a *account) nicAt(n *iaasv1.NicVxnet, readyAt time.Time) *iaasv1.NicVxnet {
	a.nicReady[n] = readyAt
	return n
}

// dropNics removes the NICs of an instance that which selects (nil: all of them).
func (a *account) dropNics(inst *stored, which func(*iaasv1.NicVxnet) bool) {
	m := instMsg(inst)
	m.Vxnets = slices.DeleteFunc(m.Vxnets, func(n *iaasv1.NicVxnet) bool {
		if which == nil || which(n) {
			delete(a.nicReady, n)
			return true
		}
		return false
	})
}

// allocIP hands out the next private address of a vxnet: the basic network's, or the ip_network of a
// managed vxnet joined to a router ("" otherwise: unmanaged vxnets have no DHCP).
func (a *account) allocIP(v *stored) string {
	switch {
	case v.id == vxnet0:
		a.ipSeq++
		return fmt.Sprintf("10.70.%d.%d", (a.ipSeq/250)%256, a.ipSeq%250+2)
	case vxnetMsg(v).GetVxnetType() == 1 && a.joins[v.id] != nil:
		return a.joins[v.id].nextIP()
	}
	return ""
}

func randomMAC() string {
	return fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", rand.IntN(256), rand.IntN(256), rand.IntN(256), rand.IntN(256))
}

// releaseInstance detaches everything from an instance that is terminated or failed to create.
func (a *account) releaseInstance(inst *stored) {
	m := instMsg(inst)
	for _, vid := range m.VolumeIds {
		if v := a.volumes()[vid]; v != nil && volMsg(v).GetInstance().GetInstanceId() == inst.id {
			detachVolume(v)
			if v.status == "in-use" {
				v.status, v.statusTime = "available", inst.statusTime
			}
		}
	}
	m.VolumeIds = nil
	if e := a.eips()[m.GetEip().GetEipId()]; e != nil && eipMsg(e).GetResource().GetResourceId() == inst.id {
		a.linkEip(e, "", "", "")
		if e.status == "associated" {
			e.status, e.statusTime = "available", inst.statusTime
		}
	}
	m.Eip = nil
	for _, kid := range m.KeypairIds {
		if kp := a.storeOf(storeKinds()["keypair"])[kid]; kp != nil {
			kp.setStrs("instance_ids", removeString(kp.strs("instance_ids"), inst.id))
		}
	}
	m.KeypairIds = nil
	a.freeNics(inst, nil)
	a.dropNics(inst, nil)
}

func describeInstances(a *account, r *request) (result, *apiError) {
	verbose, err := r.flag("verbose")
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"instance_class", "is_cluster_node", "without_contract"} {
		if _, err := r.integer(name, 0); err != nil {
			return nil, err
		}
	}
	keep := a.describeFilter(r, "instances")
	imageOK, typeOK := idFilter(r.list("image_id")), idFilter(r.list("instance_type"))
	class, hasClass := r.str("instance_class"), strings.TrimSpace(r.str("instance_class")) != ""
	items := filterSorted(a.instances(), storedBase, func(v *stored) bool {
		m := instMsg(v)
		return keep(&v.base) && imageOK(m.GetImage().GetImageId()) && typeOK(m.GetInstanceType()) &&
			(!hasClass || fmt.Sprint(m.GetInstanceClass()) == strings.TrimSpace(class))
	})
	return describeResult(r, "instance_set", items, func(v *stored) map[string]any { return a.renderInstance(r, v, verbose) })
}

// renderInstance renders an instance: its item, its own base fields, and what its relations say
// (image, NICs, EIP, security group; volume and key pair ids when verbose).
func (a *account) renderInstance(r *request, v *stored, verbose bool) map[string]any {
	m := proto.Clone(instMsg(v)).(*iaasv1.Instance)
	m.InstanceId, m.InstanceName, m.Description = proto.String(v.id), proto.String(v.name), proto.String(v.description)
	m.Status, m.TransitionStatus, m.ZoneId = proto.String(v.status), proto.String(v.transition), proto.String(v.zone)
	m.CreateTime, m.StatusTime = timestamppb.New(v.created), timestamppb.New(v.statusTime)
	m.SubCode, m.AlarmStatus = proto.Int32(0), proto.String("")
	m.Extra.CpuMax, m.Extra.MemMax = m.VcpusCurrent, proto.Int32(int32(m.GetMemoryCurrent()))
	m.Image, m.Eip, m.SecurityGroup = nil, &iaasv1.Eip{EipId: proto.String(""), EipAddr: proto.String("")}, nil
	m.VolumeIds, m.KeypairIds = nil, nil
	if img := a.images()[instMsg(v).GetImage().GetImageId()]; img != nil {
		im := imageMsg(img)
		m.Image = &iaasv1.Image{ImageId: proto.String(img.id), ImageName: proto.String(img.name), OsFamily: im.OsFamily,
			Platform: im.Platform, ProcessorType: im.ProcessorType, Provider: im.Provider, Size: im.Size, DefaultUser: im.DefaultUser}
	}
	for i, n := range m.Vxnets {
		n.Role, n.VxnetName, n.VxnetType = proto.Int32(int32(b2i(i == 0))), proto.String(""), proto.Int32(0)
		if vx := a.vxnets()[n.GetVxnetId()]; vx != nil {
			n.VxnetName, n.VxnetType = proto.String(vx.name), vxnetMsg(vx).VxnetType
		}
		if v.status == "pending" || r.now.Before(a.nicReady[instMsg(v).Vxnets[i]]) {
			n.PrivateIp = proto.String("")
		}
	}
	if e := a.eips()[instMsg(v).GetEip().GetEipId()]; e != nil {
		m.Eip = &iaasv1.Eip{EipId: proto.String(e.id), EipAddr: eipMsg(e).EipAddr, Bandwidth: eipMsg(e).Bandwidth}
	}
	if sg := a.securityGroups()[instMsg(v).GetSecurityGroup().GetSecurityGroupId()]; sg != nil {
		m.SecurityGroup = &iaasv1.SecurityGroup{SecurityGroupId: proto.String(sg.id),
			SecurityGroupName: proto.String(sg.name), IsDefault: proto.Int32(sgMsg(sg).GetIsDefault())}
	}
	out := render(m.ProtoReflect())
	// Lists are [] when empty and the image null once it is gone, as QingCloud sends them.
	out["tags"], out["vxnets"], out["image"] = a.tagsOf(v.id), orEmpty(out["vxnets"]), out["image"]
	if verbose {
		out["volume_ids"] = append([]string{}, instMsg(v).VolumeIds...)
		out["keypair_ids"] = append([]string{}, instMsg(v).KeypairIds...)
	}
	return out
}

// orEmpty is a rendered list, [] when absent.
func orEmpty(v any) any {
	if v == nil {
		return []any{}
	}
	return v
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// instanceAction is the common shape of the instances.N actions with a job.
func instanceAction(a *account, r *request, verb string, allowed []string, o func(*stored) op) (result, *apiError) {
	return jobOnEach(a, r, "instances", a.instances(), storedBase, verb, allowed, nil, o)
}

func terminateInstances(a *account, r *request) (result, *apiError) {
	return instanceAction(a, r, "terminated", []string{"running", "stopped", "suspended"}, func(inst *stored) op {
		return op{transition: "terminating", to: "terminated", ok: func() { a.releaseInstance(inst) }}
	})
}

func startInstances(a *account, r *request) (result, *apiError) {
	return instanceAction(a, r, "started", []string{"stopped"}, func(*stored) op {
		return op{transition: "starting", to: "running"}
	})
}

func stopInstances(a *account, r *request) (result, *apiError) {
	if _, err := r.flag("force"); err != nil {
		return nil, err
	}
	return instanceAction(a, r, "stopped", []string{"running"}, func(*stored) op {
		return op{transition: "stopping", to: "stopped"}
	})
}

func restartInstances(a *account, r *request) (result, *apiError) {
	return instanceAction(a, r, "restarted", []string{"running"}, func(*stored) op {
		return op{transition: "restarting", to: "running"}
	})
}

func resetInstances(a *account, r *request) (result, *apiError) {
	if _, err := r.required("login_mode"); err != nil {
		return nil, err
	}
	if _, err := r.oneOf("login_mode", "", "keypair", "passwd"); err != nil {
		return nil, err
	}
	if _, err := r.flag("need_newsid"); err != nil {
		return nil, err
	}
	return instanceAction(a, r, "reset", []string{"running", "stopped"}, func(*stored) op {
		return op{transition: "resetting"}
	})
}

func resizeInstances(a *account, r *request) (result, *apiError) {
	typ, cpu, memory, ok, err := sizing(r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errMissing("instance_type")
	}
	if _, err := r.integer("os_disk_size", 0); err != nil {
		return nil, err
	}
	return instanceAction(a, r, "resized", []string{"stopped"}, func(inst *stored) op {
		return op{label: "resizing", ok: func() {
			m := instMsg(inst)
			m.InstanceType, m.VcpusCurrent, m.MemoryCurrent = proto.String(typ), proto.Int32(int32(cpu)), proto.Int64(int64(memory))
		}}
	})
}

func ceaseInstances(a *account, r *request) (result, *apiError) {
	return instanceAction(a, r, "ceased", []string{"terminated"}, func(*stored) op {
		return op{label: "ceasing", to: "ceased"}
	})
}

func modifyInstanceAttributes(a *account, r *request) (result, *apiError) {
	id, err := r.required("instance")
	if err != nil {
		return nil, err
	}
	inst, err := lookupOne(r, a.instances(), id, storedBase)
	if err != nil {
		return nil, err
	}
	if err := inst.alive(); err != nil {
		return nil, err
	}
	inst.modify(r, "instance_name")
	return result{}, nil
}

// alive refuses operations on resources in a terminal status.
func (b *base) alive() *apiError {
	if terminal(b.status) {
		return errDenied("%s [%s] has been %s", b.kind, b.id, b.status)
	}
	return nil
}

// modify applies the name parameter and description, when present.
func (b *base) modify(r *request, nameParam string) {
	if r.has(nameParam) {
		b.name = strings.TrimSpace(r.str(nameParam))
	}
	if r.has("description") {
		b.description = strings.TrimSpace(r.str("description"))
	}
}

// instSG returns the id of an instance's security group.
func instSG(s *stored) string { return instMsg(s).GetSecurityGroup().GetSecurityGroupId() }
