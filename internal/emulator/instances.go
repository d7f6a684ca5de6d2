package emulator

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// instance statuses: pending, running, stopped, suspended, terminated, ceased.
type instance struct {
	base
	instanceType  string
	cpu, memory   int
	instanceClass int
	osDiskSize    int
	imageID       string
	nics          []*nic
	eipID         string
	volumeIDs     []string
	keypairIDs    []string
	sgID          string
}

// nic is an instance's interface in a vxnet; its private IP is shown once the instance is
// running and the clock has passed readyAt.
type nic struct {
	vxnetID string
	nicID   string
	ip      string
	readyAt time.Time
}

func instBase(v *instance) *base { return &v.base }

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

	insts := make([]*instance, count)
	ids := make([]string, count)
	for i := range insts {
		inst := &instance{
			base:         a.newBase(r, "instance", "i", r.str("instance_name"), "pending"),
			instanceType: typ, cpu: cpu, memory: memory, instanceClass: class, osDiskSize: diskSize,
			imageID: img.id, sgID: sgID,
		}
		insts[i], ids[i] = inst, inst.id
	}
	j := a.newJob(r, ids)
	for i, inst := range insts {
		inst := inst
		for _, vr := range vxReqs {
			n := a.newNic(vr.v, vr.ip, j.end)
			inst.nics = append(inst.nics, n)
		}
		if kp != nil {
			inst.keypairIDs = []string{kp.id}
			kp.setStrs("instance_ids", append(kp.strs("instance_ids"), inst.id))
		}
		a.instances[inst.id] = inst
		a.begin(&inst.base, j, i, count, op{transition: "creating", to: "running", failTo: "ceased",
			undo: func() { a.releaseInstance(inst) }}, remover(a, a.instances, inst.id))
	}
	if len(vols) > 0 {
		inst := insts[0]
		for i, v := range vols {
			a.attachVolume(v, inst, j, i, len(vols))
		}
	}
	return result{"instances": ids, "job_id": j.id}, nil
}

// newNic creates a nic of v; the private IP becomes visible at readyAt.
func (a *account) newNic(v *stored, ip string, readyAt time.Time) *nic {
	n := &nic{vxnetID: v.id, nicID: randomMAC(), readyAt: readyAt, ip: ip}
	if ip == "" {
		n.ip = a.allocIP(v)
	}
	return n
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
func (a *account) releaseInstance(inst *instance) {
	for _, vid := range inst.volumeIDs {
		if v := a.volumes()[vid]; v != nil && volMsg(v).GetInstance().GetInstanceId() == inst.id {
			detachVolume(v)
			if v.status == "in-use" {
				v.status, v.statusTime = "available", inst.statusTime
			}
		}
	}
	inst.volumeIDs = nil
	if e := a.eips()[inst.eipID]; e != nil && eipMsg(e).GetResource().GetResourceId() == inst.id {
		a.linkEip(e, "", "", "")
		if e.status == "associated" {
			e.status, e.statusTime = "available", inst.statusTime
		}
	}
	inst.eipID = ""
	for _, kid := range inst.keypairIDs {
		if kp := a.storeOf(storeKinds()["keypair"])[kid]; kp != nil {
			kp.setStrs("instance_ids", removeString(kp.strs("instance_ids"), inst.id))
		}
	}
	inst.keypairIDs = nil
	a.freeNics(inst, nil)
	inst.nics = nil
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
	items := filterSorted(a.instances, instBase, func(v *instance) bool {
		return keep(&v.base) && imageOK(v.imageID) && typeOK(v.instanceType) &&
			(!hasClass || fmt.Sprint(v.instanceClass) == strings.TrimSpace(class))
	})
	return describeResult(r, "instance_set", items, func(v *instance) map[string]any { return a.renderInstance(r, v, verbose) })
}

// renderInstance renders an instance as the generated iaasv1.Instance: its own fields, and what its
// relations say (image, NICs, EIP, security group; volume and key pair ids when verbose).
func (a *account) renderInstance(r *request, v *instance, verbose bool) map[string]any {
	m := &iaasv1.Instance{InstanceId: proto.String(v.id), InstanceName: proto.String(v.name),
		Description: proto.String(v.description), InstanceType: proto.String(v.instanceType),
		VcpusCurrent: proto.Int32(int32(v.cpu)), MemoryCurrent: proto.Int64(int64(v.memory)), Status: proto.String(v.status),
		TransitionStatus: proto.String(v.transition), CreateTime: timestamppb.New(v.created),
		StatusTime: timestamppb.New(v.statusTime), InstanceClass: proto.Int32(int32(v.instanceClass)),
		SubCode: proto.Int32(0), AlarmStatus: proto.String(""), ZoneId: proto.String(v.zone),
		Extra: &iaasv1.Extra{OsDiskSize: proto.Int64(int64(v.osDiskSize)), CpuMax: proto.Int32(int32(v.cpu)),
			MemMax: proto.Int32(int32(v.memory))},
		Eip: &iaasv1.Eip{EipId: proto.String(""), EipAddr: proto.String("")}}
	if img := a.images()[v.imageID]; img != nil {
		im := imageMsg(img)
		m.Image = &iaasv1.Image{ImageId: proto.String(img.id), ImageName: proto.String(img.name), OsFamily: im.OsFamily,
			Platform: im.Platform, ProcessorType: im.ProcessorType, Provider: im.Provider, Size: im.Size, DefaultUser: im.DefaultUser}
	}
	for i, n := range v.nics {
		no := &iaasv1.NicVxnet{NicId: proto.String(n.nicID), VxnetId: proto.String(n.vxnetID), Role: proto.Int32(int32(b2i(i == 0))),
			VxnetName: proto.String(""), VxnetType: proto.Int32(0), PrivateIp: proto.String("")}
		if vx := a.vxnets()[n.vxnetID]; vx != nil {
			no.VxnetName, no.VxnetType = proto.String(vx.name), vxnetMsg(vx).VxnetType
		}
		if v.status != "pending" && !r.now.Before(n.readyAt) {
			no.PrivateIp = proto.String(n.ip)
		}
		m.Vxnets = append(m.Vxnets, no)
	}
	if e := a.eips()[v.eipID]; e != nil {
		m.Eip = &iaasv1.Eip{EipId: proto.String(e.id), EipAddr: eipMsg(e).EipAddr, Bandwidth: eipMsg(e).Bandwidth}
	}
	if sg := a.securityGroups()[v.sgID]; sg != nil {
		m.SecurityGroup = &iaasv1.SecurityGroup{SecurityGroupId: proto.String(sg.id),
			SecurityGroupName: proto.String(sg.name), IsDefault: proto.Int32(sgMsg(sg).GetIsDefault())}
	}
	out := render(m.ProtoReflect())
	// Lists are [] when empty and the image null once it is gone, as QingCloud sends them.
	out["tags"], out["vxnets"], out["image"] = a.tagsOf(v.id), orEmpty(out["vxnets"]), out["image"]
	if verbose {
		out["volume_ids"], out["keypair_ids"] = append([]string{}, v.volumeIDs...), append([]string{}, v.keypairIDs...)
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
func instanceAction(a *account, r *request, verb string, allowed []string, o func(*instance) op) (result, *apiError) {
	return jobOnEach(a, r, "instances", a.instances, instBase, verb, allowed, nil, o)
}

func terminateInstances(a *account, r *request) (result, *apiError) {
	return instanceAction(a, r, "terminated", []string{"running", "stopped", "suspended"}, func(inst *instance) op {
		return op{transition: "terminating", to: "terminated", ok: func() { a.releaseInstance(inst) }}
	})
}

func startInstances(a *account, r *request) (result, *apiError) {
	return instanceAction(a, r, "started", []string{"stopped"}, func(*instance) op {
		return op{transition: "starting", to: "running"}
	})
}

func stopInstances(a *account, r *request) (result, *apiError) {
	if _, err := r.flag("force"); err != nil {
		return nil, err
	}
	return instanceAction(a, r, "stopped", []string{"running"}, func(*instance) op {
		return op{transition: "stopping", to: "stopped"}
	})
}

func restartInstances(a *account, r *request) (result, *apiError) {
	return instanceAction(a, r, "restarted", []string{"running"}, func(*instance) op {
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
	return instanceAction(a, r, "reset", []string{"running", "stopped"}, func(*instance) op {
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
	return instanceAction(a, r, "resized", []string{"stopped"}, func(inst *instance) op {
		return op{label: "resizing", ok: func() { inst.instanceType, inst.cpu, inst.memory = typ, cpu, memory }}
	})
}

func ceaseInstances(a *account, r *request) (result, *apiError) {
	return instanceAction(a, r, "ceased", []string{"terminated"}, func(*instance) op {
		return op{label: "ceasing", to: "ceased"}
	})
}

func modifyInstanceAttributes(a *account, r *request) (result, *apiError) {
	id, err := r.required("instance")
	if err != nil {
		return nil, err
	}
	inst, err := lookupOne(r, a.instances, id, instBase)
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
