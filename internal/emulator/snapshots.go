package emulator

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// Snapshots are a kind of the generic store (DescribeSnapshots, DeleteSnapshots and
// ModifySnapshotAttributes are answered there, with the hooks of its kindRows row below); this file
// keeps what relates them to instances and volumes: CreateSnapshots takes them of resources,
// ApplySnapshots restores the resources (volumes.go and images.go make new resources of them). Snapshot statuses: pending, available, suspended, deleted, ceased.

// snapshotRow is the generic store's row of snapshots: is_taken follows the status, and only
// available snapshots can be deleted.
var snapshotRow = kindRow{prefix: "ss", status: "available",
	deletable: func(a *account, s *stored) *apiError { return s.need("deleted", "available") },
	describe: func(a *account, r *request, s *stored, out *object) {
		out.set("is_taken", b2i(s.status == "available"))
	},
}

// snapshots returns the snapshots of the account by id.
func (a *account) snapshots() map[string]*stored { return a.storeNamed("snapshot") }

// snapshotMsg returns the item message of a stored snapshot.
func snapshotMsg(s *stored) *iaasv1.Snapshot { return s.msg.(*iaasv1.Snapshot) }

func init() {
	register("CreateSnapshots", createSnapshots)
	register("ApplySnapshots", applySnapshots)
}

// snapshotTarget is a resource that can be snapshotted.
type snapshotTarget struct {
	b    *base
	typ  string
	size int
	vol  *stored
}

func (a *account) snapshotTarget(r *request, id string) (snapshotTarget, *apiError) {
	if inst := a.instances()[id]; inst != nil && r.inZone(inst.zone) {
		if err := inst.need("snapshotted", "running", "stopped"); err != nil {
			return snapshotTarget{}, err
		}
		return snapshotTarget{b: &inst.base, typ: "instance", size: int(instMsg(inst).GetExtra().GetOsDiskSize())}, nil
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
		}}, a.remover(s))
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
	snaps, err := lookup(r, a.snapshots(), idl)
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
			inst := a.instances()[res.GetResourceId()]
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
	s, err := lookupOne(r, a.snapshots(), id)
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
