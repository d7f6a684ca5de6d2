package emulator

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// An instance is an item of the generic store (a *stored whose msg is the generated iaasv1.Instance):
// RunInstances creates it, the store's verbs (instanceRow) and the relation handlers change it. Its
// size, image (image_id), NICs (vxnets: nic_id, vxnet_id, private_ip), EIP (eip_id), volume_ids,
// keypair_ids and security group (security_group_id) are fields of its item; what they say of the
// other resources is added when it is rendered. Statuses: pending, running, stopped, suspended,
// terminated, ceased.

// instanceRow is the generic store's row of instances: what Describe shows of their relations and
// filters by image and type, and the statuses of the lifecycle verbs (Terminate releases what is
// attached; Cease removes a terminated instance).
var instanceRow = kindRow{prefix: "i", status: "running", valid: validInstance, describe: describeInstance,
	filter: func(a *account, r *request, s *stored) bool {
		m := instMsg(s)
		return idFilter(r.list("image_id"))(m.GetImage().GetImageId()) && idFilter(r.list("instance_type"))(m.GetInstanceType())
	},
	verbs: map[string]verbRule{
		"Start":   {from: []string{"stopped"}, to: "running"},
		"Stop":    {from: []string{"running"}},
		"Restart": {from: []string{"running"}, to: "running"},
		"Reset":   {from: []string{"running", "stopped"}, past: "reset", op: &op{transition: "resetting"}},
		"Resize": {from: []string{"stopped"}, quiet: true, done: func(a *account, r *request, s *stored) {
			typ, cpu, memory, _, _ := sizing(r) // validInstance checked it
			setSize(instMsg(s), typ, cpu, memory)
		}},
		"Terminate": {from: []string{"running", "stopped", "suspended"},
			done: func(a *account, r *request, s *stored) { a.releaseInstance(s) }},
		"Cease":  {from: []string{"terminated"}, op: &op{label: "ceasing", to: "ceased"}},
		"Modify": {},
	},
}

// instances returns the instances of the account by id.
func (a *account) instances() map[string]*stored { return a.storeNamed("instance") }

// instMsg returns the item message of a stored instance.
func instMsg(s *stored) *iaasv1.Instance { return s.msg.(*iaasv1.Instance) }

func init() {
	register("RunInstances", runInstances)
	register("DescribeInstances", describeInstances)
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
		if kp, err = lookupOne(r, a.storeOf(storeKinds()["keypair"]), id); err != nil {
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
	vols, err := lookup(r, a.volumes(), r.list("volumes"))
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

	k := storeKinds()["instance"]
	insts := make([]*stored, count)
	ids := make([]string, count)
	for i := range insts {
		m := &iaasv1.Instance{InstanceClass: proto.Int32(int32(class)), SubCode: proto.Int32(0), AlarmStatus: proto.String(""),
			Extra: &iaasv1.Extra{OsDiskSize: proto.Int64(int64(diskSize))}, Image: &iaasv1.Image{ImageId: proto.String(img.id)},
			SecurityGroup: &iaasv1.SecurityGroup{SecurityGroupId: proto.String(sgID)}}
		setSize(m, typ, cpu, memory)
		inst := &stored{base: a.newBase(r, "instance", "i", r.str("instance_name"), "pending"), kind: k, msg: m}
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
			undo: func() { a.releaseInstance(inst) }}, a.remover(inst))
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
	return fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", randIntN(256), randIntN(256), randIntN(256), randIntN(256))
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
		if kp := a.storeNamed("keypair")[kid]; kp != nil {
			kp.setStrs("instance_ids", removeString(kp.strs("instance_ids"), inst.id))
		}
	}
	m.KeypairIds = nil
	a.freeNics(inst, nil)
	a.dropNics(inst, nil)
}

// describeInstances lists the stored instances once verbose is 0 or 1.
func describeInstances(a *account, r *request) (result, *apiError) {
	if _, err := r.flag("verbose"); err != nil {
		return nil, err
	}
	return a.describeStored(r, specActions()[r.action], storeKinds()["instance"])
}

// setSize sets the instance type, CPUs and memory of an instance (and the maximums of its extra).
func setSize(m *iaasv1.Instance, typ string, cpu, memory int) {
	m.InstanceType, m.VcpusCurrent, m.MemoryCurrent = proto.String(typ), proto.Int32(int32(cpu)), proto.Int64(int64(memory))
	m.Extra.CpuMax, m.Extra.MemMax = proto.Int32(int32(cpu)), proto.Int32(int32(memory))
}

// describeInstance adds what an instance's relations say to its rendered item: its image, NICs
// (a private IP once the instance runs and the job that added the NIC ended), EIP and security
// group, and its volume and key pair ids when DescribeInstances is verbose.
func describeInstance(a *account, r *request, s *stored, out *object) {
	m := instMsg(s)
	out.set("image", nil) // null once gone, as QingCloud sends them
	if img := a.images()[m.GetImage().GetImageId()]; img != nil {
		out.set("image", r.shared(shareKey{"image", img.id}, func() *object {
			im, o := imageMsg(img), newObject(nil, 8)
			o.str("image_id", img.id)
			o.str("image_name", img.name)
			for _, f := range []struct {
				name string
				v    *string
			}{{"os_family", im.OsFamily}, {"platform", im.Platform}, {"processor_type", im.ProcessorType},
				{"provider", im.Provider}, {"default_user", im.DefaultUser}} {
				if f.v != nil {
					o.str(f.name, *f.v)
				}
			}
			if im.Size != nil {
				o.num("size", *im.Size)
			}
			return o
		}))
	}
	nics := make([]*object, len(m.Vxnets))
	for i, n := range m.Vxnets {
		o := newObject(nil, 6)
		if n.NicId != nil {
			o.str("nic_id", *n.NicId)
		}
		if n.VxnetId != nil {
			o.str("vxnet_id", *n.VxnetId)
		}
		o.num("role", int64(b2i(i == 0)))
		o.str("vxnet_name", "")
		o.num("vxnet_type", 0)
		o.str("private_ip", "")
		if vx := a.vxnets()[n.GetVxnetId()]; vx != nil {
			o.str("vxnet_name", vx.name)
			if t := vxnetMsg(vx).VxnetType; t != nil {
				o.num("vxnet_type", int64(*t))
			} else {
				o.remove("vxnet_type")
			}
		}
		if s.status != "pending" && !r.now.Before(a.nicReady[n]) {
			if n.PrivateIp != nil {
				o.str("private_ip", *n.PrivateIp)
			} else {
				o.remove("private_ip")
			}
		}
		nics[i] = o
	}
	out.set("vxnets", nics)
	eipID := m.GetEip().GetEipId()
	if a.eips()[eipID] == nil {
		eipID = ""
	}
	out.set("eip", r.shared(shareKey{"eip", eipID}, func() *object {
		e := newObject(nil, 3)
		e.str("eip_id", "")
		e.str("eip_addr", "")
		if x := a.eips()[eipID]; x != nil {
			e.str("eip_id", x.id)
			if em := eipMsg(x); em.EipAddr != nil {
				e.str("eip_addr", *em.EipAddr)
			} else {
				e.remove("eip_addr")
			}
			if em := eipMsg(x); em.Bandwidth != nil {
				e.num("bandwidth", int64(*em.Bandwidth))
			}
		}
		return e
	}))
	out.set("security_group", nil)
	if sg := a.securityGroups()[instSG(s)]; sg != nil {
		out.set("security_group", r.shared(shareKey{"security_group", sg.id}, func() *object {
			o := newObject(nil, 3)
			o.str("security_group_id", sg.id)
			o.str("security_group_name", sg.name)
			o.num("is_default", int64(sgMsg(sg).GetIsDefault()))
			return o
		}))
	}
	if verbose, _ := r.flag("verbose"); !verbose || r.action != "DescribeInstances" {
		out.remove("volume_ids")
		out.remove("keypair_ids")
	}
}

// validInstance checks the parameters of the instance actions of the store.
func validInstance(r *request) *apiError {
	switch r.action {
	case "StopInstances":
		_, err := r.flag("force")
		return err
	case "ResetInstances":
		if _, err := r.required("login_mode"); err != nil {
			return err
		}
		if _, err := r.oneOf("login_mode", "", "keypair", "passwd"); err != nil {
			return err
		}
		_, err := r.flag("need_newsid")
		return err
	case "ResizeInstances":
		if _, _, _, ok, err := sizing(r); err != nil || !ok {
			return cmp.Or(err, errMissing("instance_type"))
		}
		_, err := r.integer("os_disk_size", 0)
		return err
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// instSG returns the id of an instance's security group.
func instSG(s *stored) string { return instMsg(s).GetSecurityGroup().GetSecurityGroupId() }
