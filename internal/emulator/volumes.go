package emulator

import (
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// Volumes are a kind of the generic store (CreateVolumes, CloneVolumes, CreateVolumeFromSnapshot,
// DescribeVolumes, ResizeVolumes, DeleteVolumes and ModifyVolumeAttributes are answered there, with
// the hooks of its kindRows row below); this file keeps their attachment to instances. The instance a
// volume is attached to is its item's instance.instance_id, its device the item's device. Volume
// statuses: pending, available, in-use, suspended, deleted, ceased.

var validVolumeTypes = []int{0, 1, 2, 3, 4, 5, 6, 10, 100, 200}

func init() {
	register("AttachVolumes", attachVolumes)
	register("DetachVolumes", detachVolumes)
}

// volumeRow is the generic store's row of volumes: a valid size and type, what a clone or a volume
// of a snapshot copies, the attached instance and both spellings of the snapshot time in Describe,
// available-only deletion, and resizes (no visible transition) that never shrink.
var volumeRow = kindRow{prefix: "vol", status: "available", valid: validVolume, create: createVolume,
	describe: func(a *account, r *request, s *stored, out *object) {
		m, ref := volMsg(s), map[string]any{"instance_id": "", "instance_name": "", "device": ""}
		if inst := a.instances()[m.GetInstance().GetInstanceId()]; inst != nil {
			ref = map[string]any{"instance_id": inst.id, "instance_name": inst.name, "device": m.GetDevice()}
		}
		var t time.Time
		if m.LastestSnapshotTime != nil {
			t = m.LastestSnapshotTime.AsTime()
		}
		// lastest_snapshot_time is the spec's spelling, latest_snapshot_time what clients read.
		out.set("instance", ref)
		out.time("lastest_snapshot_time", t)
		out.time("latest_snapshot_time", t)
	},
	verbs: map[string]verbRule{"Delete": {from: []string{"available"}},
		"Resize": {from: []string{"available"}, quiet: true, check: func(a *account, r *request, s *stored) *apiError {
			if size, _ := r.integer("size", 0); int64(size) < volMsg(s).GetSize() {
				return errDenied("volume [%s] has size %d, can not be shrunk to %d", s.id, volMsg(s).GetSize(), size)
			}
			return nil
		}}},
}

// volumes returns the volumes of the account by id.
func (a *account) volumes() map[string]*stored { return a.storeNamed("volume") }

// volMsg returns the item message of a stored volume.
func volMsg(s *stored) *iaasv1.Volume { return s.msg.(*iaasv1.Volume) }

// validVolume checks the size (a multiple of 10 in 10..5000) and the type of the volume actions.
func validVolume(r *request) *apiError {
	size, err := r.integer("size", 10)
	if err != nil {
		return err
	}
	if size < 10 || size > 5000 || size%10 != 0 {
		return errInvalid("parameter [size] should be a multiple of 10 between 10 and 5000, got [%d]", size)
	}
	typ, err := r.integer("volume_type", 0)
	if err == nil && !slices.Contains(validVolumeTypes, typ) {
		err = errInvalid("parameter [volume_type] should be one of %v, got [%d]", validVolumeTypes, typ)
	}
	return err
}

// createVolume completes a new volume: a clone has its source's size, type and name unless given
// (the source must be available or in-use), a volume of a snapshot the snapshot's size.
func createVolume(a *account, r *request, s *stored, _ int, _ result) *apiError {
	m := volMsg(s)
	switch r.action {
	case "CloneVolumes":
		src := a.volumes()[strings.TrimSpace(r.str("volume"))] // the store found it
		if err := src.need("cloned", "available", "in-use"); err != nil {
			return err
		}
		m.Size = proto.Int64(volMsg(src).GetSize())
		if m.VolumeType == nil {
			m.VolumeType = volMsg(src).VolumeType
		}
		if s.name == "" {
			s.name = src.name
		}
	case "CreateVolumeFromSnapshot":
		snap, err := a.snapshotOf(r, "volume", "create volume")
		if err != nil {
			return err
		}
		m.Size = proto.Int64(snapshotMsg(snap).GetSize())
	}
	m.VolumeType, m.Device, m.SubCode = proto.Int32(m.GetVolumeType()), proto.String(""), proto.Int32(0)
	return nil
}

// attachVolume links v to inst now; v shows attaching until j ends.
func (a *account) attachVolume(v *stored, inst *stored, j *job, i, n int) {
	volMsg(v).Instance = &iaasv1.Instance{InstanceId: proto.String(inst.id)}
	volMsg(v).Device = proto.String("/dev/sd" + string(rune('b'+min(len(instMsg(inst).VolumeIds), 24))))
	instMsg(inst).VolumeIds = append(instMsg(inst).VolumeIds, v.id)
	a.begin(&v.base, j, i, n, op{transition: "attaching", to: "in-use", undo: func() { a.unlinkVolume(v, inst) }},
		a.remover(v))
}

// unlinkVolume detaches v from inst.
func (a *account) unlinkVolume(v *stored, inst *stored) {
	detachVolume(v)
	instMsg(inst).VolumeIds = slices.DeleteFunc(instMsg(inst).VolumeIds, func(s string) bool { return s == v.id })
}

// detachVolume clears the instance and device of v.
func detachVolume(v *stored) { volMsg(v).Instance, volMsg(v).Device = nil, proto.String("") }

// volumesAndInstance parses volumes.N and instance, which must be running or stopped.
func volumesAndInstance(a *account, r *request, verb string) ([]*stored, *stored, *apiError) {
	ids, err := r.requiredList("volumes")
	if err != nil {
		return nil, nil, err
	}
	iid, err := r.required("instance")
	if err != nil {
		return nil, nil, err
	}
	vols, err := lookup(r, a.volumes(), ids)
	if err != nil {
		return nil, nil, err
	}
	inst, err := lookupOne(r, a.instances(), iid)
	if err != nil {
		return nil, nil, err
	}
	return vols, inst, inst.need(verb, "running", "stopped")
}

func attachVolumes(a *account, r *request) (result, *apiError) {
	vols, inst, err := volumesAndInstance(a, r, "attached to")
	if err != nil {
		return nil, err
	}
	for _, v := range vols {
		if err := v.need("attached", "available"); err != nil {
			return nil, err
		}
	}
	j := a.newJob(r, append(ids(vols), inst.id))
	for i, v := range vols {
		a.attachVolume(v, inst, j, i, len(vols))
	}
	return result{"job_id": j.id}, nil
}

func detachVolumes(a *account, r *request) (result, *apiError) {
	vols, inst, err := volumesAndInstance(a, r, "detached from")
	if err != nil {
		return nil, err
	}
	for _, v := range vols {
		if err := v.need("detached", "in-use"); err != nil {
			return nil, err
		}
		if volMsg(v).GetInstance().GetInstanceId() != inst.id {
			return nil, errDenied("volume [%s] is not attached to instance [%s]", v.id, inst.id)
		}
	}
	j := a.newJob(r, append(ids(vols), inst.id))
	for i, v := range vols {
		a.begin(&v.base, j, i, len(vols), op{transition: "detaching", to: "available",
			ok: func() { a.unlinkVolume(v, inst) }}, a.remover(v))
	}
	return result{"job_id": j.id}, nil
}

// ids returns the ids of resources.
func ids(items []*stored) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.id
	}
	return out
}
