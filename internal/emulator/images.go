package emulator

import (
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// Images are a kind of the generic store (DescribeImages, CloneImages, DeleteImages and
// ModifyImageAttributes are answered there, with the hooks of its kindRows row below). The system
// images of the catalog are items of every account without a zone: seen in every zone, never
// changed. This file keeps the images made of instances (CaptureInstance, and of their snapshots,
// CaptureInstanceFromSnapshot). Image statuses: pending, available, deprecated, suspended, deleted,
// ceased.

func init() {
	register("CaptureInstance", captureInstance)
	register("CaptureInstanceFromSnapshot", captureInstanceFromSnapshot)
}

// imageRow is the generic store's row of images: what a new image copies of its source, the live
// instances of an image in Describe (private images newest first, then the catalog's), and
// deletion of available or deprecated images only.
var imageRow = kindRow{prefix: "img", status: "available", create: createImage,
	describe: func(a *account, r *request, s *stored, out *object) {
		ids := []string{}
		for _, inst := range filterSorted(a.instances(), func(i *stored) bool {
			return instMsg(i).GetImage().GetImageId() == s.id && r.inZone(i.zone) && !terminal(i.status)
		}) {
			ids = append(ids, inst.id)
		}
		out.set("instance_ids", ids)
	},
	less: func(x, y *stored) bool {
		cx, cy := catalogIndex(x.id), catalogIndex(y.id)
		if cx < 0 && cy < 0 {
			return x.created.After(y.created) || x.created.Equal(y.created) && x.id < y.id
		}
		return cx < 0 && cy >= 0 || cx >= 0 && cy >= 0 && cx < cy
	},
	verbs: map[string]verbRule{"Delete": {from: []string{"available", "deprecated"}}},
}

// images returns the images of the account by id, the system images included.
func (a *account) images() map[string]*stored { return a.storeNamed("image") }

// imageMsg returns the item message of a stored image.
func imageMsg(s *stored) *iaasv1.Image { return s.msg.(*iaasv1.Image) }

// catalogIndex is the place of a system image in the catalog, -1 for another image.
func catalogIndex(id string) int {
	return slices.IndexFunc(imageCatalog, func(s imageSeed) bool { return s.id == id })
}

// seedImages adds the system images of the catalog to the account.
func (a *account) seedImages() {
	for _, c := range imageCatalog {
		a.images()[c.id] = &stored{kind: storeKinds()["image"], base: base{kind: "image", id: c.id, name: c.name,
			status: "available", created: catalogEpoch, statusTime: catalogEpoch},
			msg: &iaasv1.Image{Size: proto.Int64(int64(c.size)), ProcessorType: proto.String(c.processor),
				Platform: proto.String(c.platform), OsFamily: proto.String(c.osFamily), Provider: proto.String("system"),
				Visibility: proto.String("public"), Owner: proto.String("system"), RecommendedType: proto.String("c1m1"),
				DefaultUser: proto.String(c.defaultUser), SubCode: proto.Int32(0)}}
	}
}

// findImage looks up an image usable in the request zone (2100 if unknown).
func (a *account) findImage(r *request, id string) (*stored, *apiError) {
	if img := a.images()[id]; img != nil && (img.zone == "" || r.inZone(img.zone)) {
		return img, nil
	}
	return nil, errNotFound(id)
}

// createImage completes a new private image of the request's source: the image a clone copies (its
// name unless given; it must be available), the instance a capture takes (its disk size), or the
// instance snapshot (its size); the platform fields are the source image's.
func createImage(a *account, r *request, s *stored, _ int, _ result) *apiError {
	var from *stored
	var size int64
	switch param := strings.TrimSpace; r.action {
	case "CloneImages":
		from = a.images()[param(r.str("image"))] // the store found it
		if err := from.need("cloned", "available"); err != nil {
			return err
		}
		size = imageMsg(from).GetSize()
		if s.name == "" {
			s.name = from.name
		}
	case "CaptureInstance":
		inst := instMsg(a.instances()[param(r.str("instance"))])
		from, size = a.images()[inst.GetImage().GetImageId()], inst.GetExtra().GetOsDiskSize()
	case "CaptureInstanceFromSnapshot":
		snap := a.snapshots()[param(r.str("snapshot"))]
		size = snapshotMsg(snap).GetSize()
		if inst := a.instances()[snapshotMsg(snap).GetResource().GetResourceId()]; inst != nil {
			from = a.images()[instMsg(inst).GetImage().GetImageId()]
		}
	}
	f := &iaasv1.Image{ProcessorType: proto.String("64bit"), Platform: proto.String("linux"),
		OsFamily: proto.String("centos"), DefaultUser: proto.String("root")}
	if from != nil {
		f = imageMsg(from)
	}
	m := imageMsg(s)
	m.Size, m.Provider, m.Visibility, m.RecommendedType = proto.Int64(size), proto.String("self"), proto.String("private"), proto.String("c1m1")
	m.ProcessorType, m.Platform = proto.String(f.GetProcessorType()), proto.String(f.GetPlatform())
	m.OsFamily, m.DefaultUser, m.SubCode = proto.String(f.GetOsFamily()), proto.String(f.GetDefaultUser()), proto.Int32(0)
	return nil
}

// captureImage makes the private image of the request, available when j ends.
func (a *account) captureImage(r *request, j *job) string {
	ids, _ := a.create(r, storeKinds()["image"], j, 1, nil) // createImage refuses only clones
	return ids[0]
}

func captureInstanceFromSnapshot(a *account, r *request) (result, *apiError) {
	s, err := a.snapshotOf(r, "instance", "capture image")
	if err != nil {
		return nil, err
	}
	j := a.newJob(r, nil)
	img := a.captureImage(r, j)
	j.resourceIDs = []string{s.id, img}
	return result{"image_id": img, "job_id": j.id}, nil
}

func captureInstance(a *account, r *request) (result, *apiError) {
	id, err := r.required("instance")
	if err != nil {
		return nil, err
	}
	inst, err := lookupOne(r, a.instances(), id)
	if err != nil {
		return nil, err
	}
	if err := inst.need("captured", "stopped"); err != nil {
		return nil, err
	}
	j := a.newJob(r, nil)
	img := a.captureImage(r, j)
	j.resourceIDs = []string{inst.id, img}
	a.begin(&inst.base, j, 0, 1, op{label: "capturing"}, a.remover(inst))
	return result{"image_id": img, "job_id": j.id}, nil
}
