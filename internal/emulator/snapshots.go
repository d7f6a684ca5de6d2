package emulator

import (
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// Snapshots are a kind of the generic store (DescribeSnapshots, DeleteSnapshots and
// ModifySnapshotAttributes are answered there, with the hooks of its kindRows row below); this file
// keeps what relates them to instances and volumes: CreateSnapshots takes them of resources,
// ApplySnapshots restores the resources, CreateVolumeFromSnapshot and CaptureInstanceFromSnapshot
// make new resources of them. Snapshot statuses: pending, available, suspended, deleted, ceased.

// snapshotRow is the generic store's row of snapshots: is_taken follows the status, and only
// available snapshots can be deleted.
var snapshotRow = kindRow{prefix: "ss", status: "available",
	deletable: func(a *account, s *stored) *apiError { return s.need("deleted", "available") },
	describe: func(a *account, r *request, s *stored, out map[string]any) {
		out["is_taken"] = b2i(s.status == "available")
	},
}

// snapshots returns the snapshots of the account by id.
func (a *account) snapshots() map[string]*stored { return a.storeOf(storeKinds()["snapshot"]) }

// snapshotMsg returns the item message of a stored snapshot.
func snapshotMsg(s *stored) *iaasv1.Snapshot { return s.msg.(*iaasv1.Snapshot) }

// image statuses: pending, available, deprecated, suspended, deleted, ceased. System images are
// shared by all accounts and never change.
type image struct {
	base
	osFamily    string
	platform    string
	processor   string
	provider    string
	visibility  string
	size        int
	defaultUser string
	system      bool
}

func imgBase(v *image) *base { return &v.base }

var systemImages = func() map[string]*image {
	m := make(map[string]*image, len(imageCatalog))
	for _, s := range imageCatalog {
		m[s.id] = &image{
			base: base{kind: "image", id: s.id, name: s.name, status: "available", created: catalogEpoch,
				statusTime: catalogEpoch},
			osFamily: s.osFamily, platform: s.platform, processor: s.processor, provider: "system",
			visibility: "public", size: s.size, defaultUser: s.defaultUser, system: true,
		}
	}
	return m
}()

// imageByID returns a system or private image (any zone).
func (a *account) imageByID(id string) *image {
	if img := systemImages[id]; img != nil {
		return img
	}
	return a.images[id]
}

// findImage looks up an image usable in the request zone (2100 if unknown).
func (a *account) findImage(r *request, id string) (*image, *apiError) {
	if img := systemImages[id]; img != nil {
		return img, nil
	}
	return lookupOne(r, a.images, id, imgBase)
}

type imageOut struct {
	ImageID          string   `json:"image_id"`
	ImageName        string   `json:"image_name"`
	Description      string   `json:"description"`
	Size             int      `json:"size"`
	ProcessorType    string   `json:"processor_type"`
	Platform         string   `json:"platform"`
	OsFamily         string   `json:"os_family"`
	Visibility       string   `json:"visibility"`
	Provider         string   `json:"provider"`
	Owner            string   `json:"owner"`
	RecommendedType  string   `json:"recommended_type"`
	Status           string   `json:"status"`
	TransitionStatus string   `json:"transition_status"`
	CreateTime       jtime    `json:"create_time"`
	StatusTime       jtime    `json:"status_time"`
	DefaultUser      string   `json:"default_user"`
	SubCode          int      `json:"sub_code"`
	InstanceIDs      []string `json:"instance_ids"`
}

func init() {
	register("CreateSnapshots", createSnapshots)
	register("ApplySnapshots", applySnapshots)
	register("CaptureInstanceFromSnapshot", captureInstanceFromSnapshot)
	register("DescribeImages", describeImages)
	register("CaptureInstance", captureInstance)
	register("CloneImages", cloneImages)
	register("DeleteImages", deleteImages)
	register("ModifyImageAttributes", modifyImageAttributes)
}

// snapshotTarget is a resource that can be snapshotted.
type snapshotTarget struct {
	b    *base
	typ  string
	size int
	vol  *stored
}

func (a *account) snapshotTarget(r *request, id string) (snapshotTarget, *apiError) {
	if inst := a.instances[id]; inst != nil && r.inZone(inst.zone) {
		if err := inst.need("snapshotted", "running", "stopped"); err != nil {
			return snapshotTarget{}, err
		}
		return snapshotTarget{b: &inst.base, typ: "instance", size: inst.osDiskSize}, nil
	}
	if v := a.volumes()[id]; v != nil && r.inZone(v.zone) {
		if err := v.need("snapshotted", "available", "in-use"); err != nil {
			return snapshotTarget{}, err
		}
		return snapshotTarget{b: &v.base, typ: "volume", size: int(volMsg(v).GetSize()), vol: v}, nil
	}
	return snapshotTarget{}, errNotFound(id)
}

func createSnapshots(a *account, r *request) (result, *apiError) {
	idl, err := r.requiredList("resources")
	if err != nil {
		return nil, err
	}
	full, err := r.flag("is_full")
	if err != nil {
		return nil, err
	}
	targets := make([]snapshotTarget, len(idl))
	for i, id := range idl {
		if targets[i], err = a.snapshotTarget(r, id); err != nil {
			return nil, err
		}
	}
	j := a.newJob(r, nil)
	out := make([]string, len(targets))
	k := storeKinds()["snapshot"]
	for i, t := range targets {
		t := t
		s := &stored{base: a.newBase(r, "snapshot", k.prefix, r.str("snapshot_name"), "pending"), kind: k}
		s.msg = &iaasv1.Snapshot{SnapshotType: proto.Int32(int32(b2i(full))), IsHead: proto.Int32(1), RootId: proto.String(s.id),
			ParentId: proto.String(""), Size: proto.Int64(int64(t.size)), TotalSize: proto.Int64(int64(t.size)),
			Provider: proto.String("self"), Visibility: proto.String("private"), SubCode: proto.Int32(0),
			SnapshotTime: timestamppb.New(r.now), Resource: &iaasv1.Resource{ResourceId: proto.String(t.b.id),
				ResourceName: proto.String(t.b.name), ResourceType: proto.String(t.typ)}}
		a.snapshots()[s.id] = s
		out[i] = s.id
		a.begin(&s.base, j, i, len(targets), op{transition: "creating", to: "available", failTo: "ceased", ok: func() {
			if t.vol != nil {
				volMsg(t.vol).LastestSnapshotTime = timestamppb.New(j.end)
			}
		}}, remover(a, a.snapshots(), s.id))
	}
	j.resourceIDs = append(append([]string{}, idl...), out...)
	// Production answers job_id as a one-element list here (the 2013 spec says a string; QingCloud's
	// Go SDK changed the field to a list in 2024 to parse production answers).
	return result{"snapshots": out, "job_id": []string{j.id}}, nil
}

// applySnapshots restores resources from snapshots: instances must be stopped, volumes available.
func applySnapshots(a *account, r *request) (result, *apiError) {
	idl, err := r.requiredList("snapshots")
	if err != nil {
		return nil, err
	}
	snaps, err := lookup(r, a.snapshots(), idl, storedBase)
	if err != nil {
		return nil, err
	}
	var targets []*base
	for _, s := range snaps {
		if err := s.need("applied", "available"); err != nil {
			return nil, err
		}
		res := snapshotMsg(s).GetResource()
		switch res.GetResourceType() {
		case "instance":
			inst := a.instances[res.GetResourceId()]
			if inst == nil {
				return nil, errNotFound(res.GetResourceId())
			}
			if err := inst.need("restored", "stopped"); err != nil {
				return nil, err
			}
			targets = append(targets, &inst.base)
		case "volume":
			v := a.volumes()[res.GetResourceId()]
			if v == nil {
				return nil, errNotFound(res.GetResourceId())
			}
			if err := v.need("restored", "available"); err != nil {
				return nil, err
			}
			targets = append(targets, &v.base)
		}
	}
	j := a.newJob(r, idl)
	for i, b := range targets {
		a.begin(b, j, i, len(targets), op{label: "applying snapshot"}, nil)
	}
	return result{"job_id": j.id}, nil
}

// snapshotOf looks up the snapshot parameter, which must be available and of resource type typ.
func (a *account) snapshotOf(r *request, typ, verb string) (*stored, *apiError) {
	id, err := r.required("snapshot")
	if err != nil {
		return nil, err
	}
	s, err := lookupOne(r, a.snapshots(), id, storedBase)
	if err != nil {
		return nil, err
	}
	if s.status != "available" || s.busy != "" {
		if s.busy != "" {
			return nil, s.idle()
		}
		return nil, errDenied("snapshot [%s] is not available, can not %s from it", s.id, verb)
	}
	if rt := snapshotMsg(s).GetResource().GetResourceType(); rt != typ {
		return nil, errDenied("snapshot [%s] is a snapshot of a %s, can not %s from it", s.id, rt, verb)
	}
	return s, nil
}

// createImage creates a private image, available when j ends.
func (a *account) createImage(r *request, name string, size int, from *image, j *job) *image {
	img := &image{base: a.newBase(r, "image", "img", name, "pending"), provider: "self", visibility: "private",
		size: size, processor: "64bit", platform: "linux", osFamily: "centos", defaultUser: "root"}
	if from != nil {
		img.osFamily, img.platform, img.processor, img.defaultUser = from.osFamily, from.platform, from.processor, from.defaultUser
	}
	a.images[img.id] = img
	a.begin(&img.base, j, 0, 1, op{transition: "creating", to: "available", failTo: "ceased"}, remover(a, a.images, img.id))
	return img
}

func captureInstanceFromSnapshot(a *account, r *request) (result, *apiError) {
	s, err := a.snapshotOf(r, "instance", "capture image")
	if err != nil {
		return nil, err
	}
	var from *image
	if inst := a.instances[snapshotMsg(s).GetResource().GetResourceId()]; inst != nil {
		from = a.imageByID(inst.imageID)
	}
	j := a.newJob(r, nil)
	img := a.createImage(r, r.str("image_name"), int(snapshotMsg(s).GetSize()), from, j)
	j.resourceIDs = []string{s.id, img.id}
	return result{"image_id": img.id, "job_id": j.id}, nil
}

// cloneImages copies an available image (a system or a private one) into count private images.
func cloneImages(a *account, r *request) (result, *apiError) {
	id, err := r.required("image")
	if err != nil {
		return nil, err
	}
	src, err := a.findImage(r, id)
	if err != nil {
		return nil, err
	}
	if err := src.need("cloned", "available"); err != nil {
		return nil, err
	}
	count, err := r.count()
	if err != nil {
		return nil, err
	}
	name := r.str("image_name")
	if name == "" {
		name = src.name
	}
	j := a.newJob(r, nil)
	ids := make([]string, count)
	for i := range ids {
		ids[i] = a.createImage(r, name, src.size, src, j).id
	}
	j.resourceIDs = append([]string{src.id}, ids...)
	return result{"images": ids, "job_id": j.id}, nil
}

func captureInstance(a *account, r *request) (result, *apiError) {
	id, err := r.required("instance")
	if err != nil {
		return nil, err
	}
	inst, err := lookupOne(r, a.instances, id, instBase)
	if err != nil {
		return nil, err
	}
	if err := inst.need("captured", "stopped"); err != nil {
		return nil, err
	}
	j := a.newJob(r, nil)
	img := a.createImage(r, r.str("image_name"), inst.osDiskSize, a.imageByID(inst.imageID), j)
	j.resourceIDs = []string{inst.id, img.id}
	a.begin(&inst.base, j, 0, 1, op{label: "capturing"}, remover(a, a.instances, inst.id))
	return result{"image_id": img.id, "job_id": j.id}, nil
}

func describeImages(a *account, r *request) (result, *apiError) {
	if _, err := r.integer("verbose", 0); err != nil {
		return nil, err
	}
	idOK, statusOK := idFilter(r.list("images")), idFilter(r.list("status"))
	tagIDs := r.list("tags")
	str := func(name string) string { return strings.TrimSpace(r.str(name)) }
	proc, fam, vis, prov := str("processor_type"), str("os_family"), str("visibility"), str("provider")
	keep := func(v *image) bool {
		return (v.system || r.inZone(v.zone)) && idOK(v.id) && statusOK(v.status) && r.searchMatch(v.id, v.name) &&
			(proc == "" || v.processor == proc) && (fam == "" || v.osFamily == fam) &&
			(vis == "" || v.visibility == vis) && (prov == "" || v.provider == prov) && a.hasAnyTag(v.id, tagIDs)
	}
	var items []*image
	for _, s := range imageCatalog {
		if img := systemImages[s.id]; keep(img) {
			items = append(items, img)
		}
	}
	items = append(filterSorted(a.images, imgBase, keep), items...)
	return describeResult(r, "image_set", items, func(v *image) imageOut {
		owner := a.owner
		if v.system {
			owner = "system"
		}
		instIDs := []string{}
		for _, inst := range filterSorted(a.instances, instBase, func(i *instance) bool {
			return i.imageID == v.id && r.inZone(i.zone) && !terminal(i.status)
		}) {
			instIDs = append(instIDs, inst.id)
		}
		return imageOut{ImageID: v.id, ImageName: v.name, Description: v.description, Size: v.size,
			ProcessorType: v.processor, Platform: v.platform, OsFamily: v.osFamily, Visibility: v.visibility,
			Provider: v.provider, Owner: owner, RecommendedType: "c1m1", Status: v.status, TransitionStatus: v.transition,
			CreateTime: jtime(v.created), StatusTime: jtime(v.statusTime), DefaultUser: v.defaultUser, InstanceIDs: instIDs}
	})
}

func privateImages(a *account, r *request, idl []string) ([]*image, *apiError) {
	out := make([]*image, 0, len(idl))
	for _, id := range idl {
		if systemImages[id] != nil {
			return nil, errDenied("image [%s] is a system image, can not be changed", id)
		}
		img, err := lookupOne(r, a.images, id, imgBase)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

func deleteImages(a *account, r *request) (result, *apiError) {
	idl, err := r.requiredList("images")
	if err != nil {
		return nil, err
	}
	imgs, err := privateImages(a, r, idl)
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		if err := img.need("deleted", "available", "deprecated"); err != nil {
			return nil, err
		}
	}
	j := a.newJob(r, idl)
	for i, img := range imgs {
		a.begin(&img.base, j, i, len(imgs), op{transition: "deleting", to: "deleted"}, remover(a, a.images, img.id))
	}
	return result{"job_id": j.id}, nil
}

func modifyImageAttributes(a *account, r *request) (result, *apiError) {
	id, err := r.required("image")
	if err != nil {
		return nil, err
	}
	imgs, err := privateImages(a, r, []string{id})
	if err != nil {
		return nil, err
	}
	if err := imgs[0].alive(); err != nil {
		return nil, err
	}
	imgs[0].modify(r, "image_name")
	return result{"image_id": id}, nil
}
