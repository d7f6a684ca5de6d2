package emulator

import (
	"slices"
	"time"
)

// volume statuses: pending, available, in-use, suspended, deleted, ceased.
type volume struct {
	base
	size         int
	volumeType   int
	instanceID   string
	device       string
	lastSnapshot time.Time
}

func volBase(v *volume) *base { return &v.base }

type volumeInstanceRef struct {
	InstanceID   string `json:"instance_id"`
	InstanceName string `json:"instance_name"`
	Device       string `json:"device"`
}

type volumeOut struct {
	VolumeID            string             `json:"volume_id"`
	VolumeName          string             `json:"volume_name"`
	Description         string             `json:"description"`
	Size                int                `json:"size"`
	VolumeType          int                `json:"volume_type"`
	Status              string             `json:"status"`
	TransitionStatus    string             `json:"transition_status"`
	SubCode             int                `json:"sub_code"`
	Instance            *volumeInstanceRef `json:"instance"`
	CreateTime          jtime              `json:"create_time"`
	StatusTime          jtime              `json:"status_time"`
	LastestSnapshotTime jtime              `json:"lastest_snapshot_time"` // the spec's spelling
	LatestSnapshotTime  jtime              `json:"latest_snapshot_time"`  // what clients read
	Owner               string             `json:"owner"`
	Device              string             `json:"device"`
	Tags                []tagOut           `json:"tags"`
	ZoneID              string             `json:"zone_id"`
}

var validVolumeTypes = []int{0, 1, 2, 3, 4, 5, 6, 10, 100, 200}

func init() {
	register("CreateVolumes", createVolumes)
	register("CloneVolumes", cloneVolumes)
	register("DescribeVolumes", describeVolumes)
	register("DeleteVolumes", deleteVolumes)
	register("AttachVolumes", attachVolumes)
	register("DetachVolumes", detachVolumes)
	register("ResizeVolumes", resizeVolumes)
	register("ModifyVolumeAttributes", modifyVolumeAttributes)
}

func validSize(size int) *apiError {
	if size < 10 || size > 5000 || size%10 != 0 {
		return errInvalid("parameter [size] should be a multiple of 10 between 10 and 5000, got [%d]", size)
	}
	return nil
}

// createVolume creates one volume in status pending, available when j ends.
func (a *account) createVolume(r *request, name string, size, typ int, j *job, i, n int) *volume {
	v := &volume{base: a.newBase(r, "volume", "vol", name, "pending"), size: size, volumeType: typ}
	a.volumes[v.id] = v
	a.begin(&v.base, j, i, n, op{transition: "creating", to: "available", failTo: "ceased"}, remover(a, a.volumes, v.id))
	return v
}

func createVolumes(a *account, r *request) (result, *apiError) {
	size, err := r.requiredInt("size")
	if err != nil {
		return nil, err
	}
	if err := validSize(size); err != nil {
		return nil, err
	}
	typ, err := r.integer("volume_type", 0)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(validVolumeTypes, typ) {
		return nil, errInvalid("parameter [volume_type] should be one of %v, got [%d]", validVolumeTypes, typ)
	}
	count, err := r.count()
	if err != nil {
		return nil, err
	}
	// Ids first, so the job lists them; then the volumes.
	j := a.newJob(r, nil)
	ids := make([]string, count)
	for i := range ids {
		ids[i] = a.createVolume(r, r.str("volume_name"), size, typ, j, i, count).id
	}
	j.resourceIDs = ids
	return result{"volumes": ids, "job_id": j.id}, nil
}

// cloneVolumes copies an available or in-use volume (count copies, of its size and type unless
// volume_type is given); the copies are available when the job ends.
func cloneVolumes(a *account, r *request) (result, *apiError) {
	id, err := r.required("volume")
	if err != nil {
		return nil, err
	}
	src, err := lookupOne(r, a.volumes, id, volBase)
	if err != nil {
		return nil, err
	}
	if err := src.need("cloned", "available", "in-use"); err != nil {
		return nil, err
	}
	typ, err := r.integer("volume_type", src.volumeType)
	if err != nil {
		return nil, err
	}
	count, err := r.count()
	if err != nil {
		return nil, err
	}
	name := r.str("volume_name")
	if name == "" {
		name = src.name
	}
	j := a.newJob(r, nil)
	ids := make([]string, count)
	for i := range ids {
		ids[i] = a.createVolume(r, name, src.size, typ, j, i, count).id
	}
	j.resourceIDs = append([]string{src.id}, ids...)
	return result{"volumes": ids, "job_id": j.id}, nil
}

func describeVolumes(a *account, r *request) (result, *apiError) {
	if _, err := r.flag("verbose"); err != nil {
		return nil, err
	}
	typ, err := r.integer("volume_type", -1)
	if err != nil {
		return nil, err
	}
	keep := a.describeFilter(r, "volumes")
	items := filterSorted(a.volumes, volBase, func(v *volume) bool {
		return keep(&v.base) && (typ < 0 || v.volumeType == typ)
	})
	return describeResult(r, "volume_set", items, func(v *volume) volumeOut { return a.renderVolume(v) })
}

func (a *account) renderVolume(v *volume) volumeOut {
	out := volumeOut{
		VolumeID: v.id, VolumeName: v.name, Description: v.description, Size: v.size, VolumeType: v.volumeType,
		Status: v.status, TransitionStatus: v.transition, CreateTime: jtime(v.created), StatusTime: jtime(v.statusTime),
		LastestSnapshotTime: jtime(v.lastSnapshot), LatestSnapshotTime: jtime(v.lastSnapshot), Owner: a.owner, Device: v.device, Tags: a.tagsOf(v.id), ZoneID: v.zone,
		Instance: &volumeInstanceRef{},
	}
	if inst := a.instances[v.instanceID]; inst != nil {
		out.Instance = &volumeInstanceRef{InstanceID: inst.id, InstanceName: inst.name, Device: v.device}
	}
	return out
}

// attachVolume links v to inst now; v shows attaching until j ends.
func (a *account) attachVolume(v *volume, inst *instance, j *job, i, n int) {
	v.instanceID = inst.id
	v.device = "/dev/sd" + string(rune('b'+min(len(inst.volumeIDs), 24)))
	inst.volumeIDs = append(inst.volumeIDs, v.id)
	a.begin(&v.base, j, i, n, op{transition: "attaching", to: "in-use", undo: func() { a.unlinkVolume(v, inst) }},
		remover(a, a.volumes, v.id))
}

func (a *account) unlinkVolume(v *volume, inst *instance) {
	v.instanceID, v.device = "", ""
	inst.volumeIDs = slices.DeleteFunc(inst.volumeIDs, func(s string) bool { return s == v.id })
}

// volumesAndInstance parses volumes.N and instance.
func volumesAndInstance(a *account, r *request) ([]*volume, *instance, *apiError) {
	ids, err := r.requiredList("volumes")
	if err != nil {
		return nil, nil, err
	}
	iid, err := r.required("instance")
	if err != nil {
		return nil, nil, err
	}
	vols, err := lookup(r, a.volumes, ids, volBase)
	if err != nil {
		return nil, nil, err
	}
	inst, err := lookupOne(r, a.instances, iid, instBase)
	if err != nil {
		return nil, nil, err
	}
	return vols, inst, nil
}

func attachVolumes(a *account, r *request) (result, *apiError) {
	vols, inst, err := volumesAndInstance(a, r)
	if err != nil {
		return nil, err
	}
	if err := inst.need("attached to", "running", "stopped"); err != nil {
		return nil, err
	}
	for _, v := range vols {
		if err := v.need("attached", "available"); err != nil {
			return nil, err
		}
	}
	j := a.newJob(r, append(ids(vols, volBase), inst.id))
	for i, v := range vols {
		a.attachVolume(v, inst, j, i, len(vols))
	}
	return result{"job_id": j.id}, nil
}

func detachVolumes(a *account, r *request) (result, *apiError) {
	vols, inst, err := volumesAndInstance(a, r)
	if err != nil {
		return nil, err
	}
	if err := inst.need("detached from", "running", "stopped"); err != nil {
		return nil, err
	}
	for _, v := range vols {
		if err := v.need("detached", "in-use"); err != nil {
			return nil, err
		}
		if v.instanceID != inst.id {
			return nil, errDenied("volume [%s] is not attached to instance [%s]", v.id, inst.id)
		}
	}
	j := a.newJob(r, append(ids(vols, volBase), inst.id))
	for i, v := range vols {
		v := v
		a.begin(&v.base, j, i, len(vols), op{transition: "detaching", to: "available",
			ok: func() { a.unlinkVolume(v, inst) }}, remover(a, a.volumes, v.id))
	}
	return result{"job_id": j.id}, nil
}

func resizeVolumes(a *account, r *request) (result, *apiError) {
	ids, err := r.requiredList("volumes")
	if err != nil {
		return nil, err
	}
	size, err := r.requiredInt("size")
	if err != nil {
		return nil, err
	}
	if err := validSize(size); err != nil {
		return nil, err
	}
	vols, err := lookup(r, a.volumes, ids, volBase)
	if err != nil {
		return nil, err
	}
	for _, v := range vols {
		if err := v.need("resized", "available"); err != nil {
			return nil, err
		}
		if size < v.size {
			return nil, errDenied("volume [%s] has size %d, can not be shrunk to %d", v.id, v.size, size)
		}
	}
	j := a.newJob(r, ids)
	for i, v := range vols {
		v := v
		a.begin(&v.base, j, i, len(vols), op{label: "resizing", ok: func() { v.size = size }}, remover(a, a.volumes, v.id))
	}
	return result{"job_id": j.id}, nil
}

func deleteVolumes(a *account, r *request) (result, *apiError) {
	return jobOnEach(a, r, "volumes", a.volumes, volBase, "deleted", []string{"available"}, nil, func(*volume) op {
		return op{transition: "deleting", to: "deleted"}
	})
}

func modifyVolumeAttributes(a *account, r *request) (result, *apiError) {
	id, err := r.required("volume")
	if err != nil {
		return nil, err
	}
	v, err := lookupOne(r, a.volumes, id, volBase)
	if err != nil {
		return nil, err
	}
	if err := v.alive(); err != nil {
		return nil, err
	}
	v.modify(r, "volume_name")
	return result{}, nil
}

// ids returns the ids of resources.
func ids[T any](items []*T, b func(*T) *base) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = b(it).id
	}
	return out
}
