package emulator

import (
	"slices"
	"strings"
)

// tag has no status; links are the attached resources in attach order.
type tag struct {
	base
	color string
	links []tagLink
}

type tagLink struct{ resourceID, resourceType string }

func tagBase(v *tag) *base { return &v.base }

// tagOut is a tag as embedded in other resources.
type tagOut struct {
	TagID   string `json:"tag_id"`
	TagName string `json:"tag_name"`
	Color   string `json:"color"`
}

type resourceTagPairOut struct {
	TagID        string `json:"tag_id"`
	ResourceType string `json:"resource_type"`
	ResourceID   string `json:"resource_id"`
}

type resourceTypeCountOut struct {
	Count        int    `json:"count"`
	ResourceType string `json:"resource_type"`
}

type tagFullOut struct {
	TagID             string                 `json:"tag_id"`
	TagName           string                 `json:"tag_name"`
	Description       string                 `json:"description"`
	Color             string                 `json:"color"`
	CreateTime        jtime                  `json:"create_time"`
	Owner             string                 `json:"owner"`
	ResourceCount     int                    `json:"resource_count"`
	ResourceTypeCount []resourceTypeCountOut `json:"resource_type_count,omitempty"`
	ResourceTagPairs  []resourceTagPairOut   `json:"resource_tag_pairs,omitempty"`
}

func init() {
	register("CreateTag", createTag)
	register("DescribeTags", describeTags)
	register("DeleteTags", deleteTags)
	register("ModifyTagAttributes", modifyTagAttributes)
	register("AttachTags", attachTags)
	register("DetachTags", detachTags)
}

// tagsOf returns the tags attached to a resource, in tag creation order.
func (a *account) tagsOf(resourceID string) []tagOut {
	out := []tagOut{}
	for _, t := range filterSorted(a.tags, tagBase, func(t *tag) bool {
		return slices.ContainsFunc(t.links, func(l tagLink) bool { return l.resourceID == resourceID })
	}) {
		out = append(out, tagOut{TagID: t.id, TagName: t.name, Color: t.color})
	}
	slices.Reverse(out)
	return out
}

// hasAnyTag reports whether the resource carries one of tagIDs (true when tagIDs is empty).
func (a *account) hasAnyTag(resourceID string, tagIDs []string) bool {
	if len(tagIDs) == 0 {
		return true
	}
	for _, id := range tagIDs {
		if t := a.tags[id]; t != nil &&
			slices.ContainsFunc(t.links, func(l tagLink) bool { return l.resourceID == resourceID }) {
			return true
		}
	}
	return false
}

// dropTags detaches every tag from a removed resource.
func (a *account) dropTags(resourceID string) {
	for _, t := range a.tags {
		t.links = slices.DeleteFunc(t.links, func(l tagLink) bool { return l.resourceID == resourceID })
	}
}

// taggable finds a resource of type typ for AttachTags.
func (a *account) taggable(r *request, typ, id string) *apiError {
	var b *base
	switch typ {
	case "instance":
		if v := a.instances[id]; v != nil {
			b = &v.base
		}
	case "volume":
		if v := a.volumes[id]; v != nil {
			b = &v.base
		}
	case "eip":
		if v := a.eips[id]; v != nil {
			b = &v.base
		}
	case "vxnet":
		if v := a.vxnets[id]; v != nil && id != vxnet0 {
			b = &v.base
		}
	case "security_group":
		if v := a.sgs[id]; v != nil {
			b = &v.base
		}
	case "snapshot":
		if v := a.snapshots[id]; v != nil {
			b = &v.base
		}
	case "image":
		if v := a.images[id]; v != nil {
			b = &v.base
		}
	case "router":
		if v := a.routers[id]; v != nil {
			b = &v.base
		}
	case "loadbalancer":
		if v := a.lbs[id]; v != nil {
			b = &v.base
		}
	default:
		k := storeKinds()[typ]
		if k == nil {
			return errInvalid("resource_type [%s] can not be tagged", clip(typ))
		}
		if v := a.storeOf(k)[id]; v != nil {
			b = &v.base
		}
	}
	if b == nil || !r.inZone(b.zone) {
		return errNotFound(id)
	}
	return nil
}

func createTag(a *account, r *request) (result, *apiError) {
	color := strings.TrimSpace(r.str("color"))
	if color == "" {
		color = "#9f9bb7"
	}
	t := &tag{base: a.newBase(r, "tag", "tag", r.str("tag_name"), ""), color: color}
	a.tags[t.id] = t
	return result{"tag_id": t.id}, nil
}

func describeTags(a *account, r *request) (result, *apiError) {
	verbose, err := r.flag("verbose")
	if err != nil {
		return nil, err
	}
	idOK := idFilter(r.list("tags"))
	items := filterSorted(a.tags, tagBase, func(v *tag) bool {
		return r.inZone(v.zone) && idOK(v.id) && r.searchMatch(v.id, v.name)
	})
	return describeResult(r, "tag_set", items, func(v *tag) tagFullOut {
		out := tagFullOut{TagID: v.id, TagName: v.name, Description: v.description, Color: v.color,
			CreateTime: jtime(v.created), Owner: a.owner, ResourceCount: len(v.links)}
		if verbose {
			out.ResourceTagPairs = []resourceTagPairOut{}
			counts := map[string]int{}
			var order []string
			for _, l := range v.links {
				out.ResourceTagPairs = append(out.ResourceTagPairs,
					resourceTagPairOut{TagID: v.id, ResourceType: l.resourceType, ResourceID: l.resourceID})
				if counts[l.resourceType] == 0 {
					order = append(order, l.resourceType)
				}
				counts[l.resourceType]++
			}
			out.ResourceTypeCount = []resourceTypeCountOut{}
			for _, typ := range order {
				out.ResourceTypeCount = append(out.ResourceTypeCount, resourceTypeCountOut{Count: counts[typ], ResourceType: typ})
			}
		}
		return out
	})
}

func deleteTags(a *account, r *request) (result, *apiError) {
	idl, err := r.requiredList("tags")
	if err != nil {
		return nil, err
	}
	if _, err := lookup(r, a.tags, idl, tagBase); err != nil {
		return nil, err
	}
	for _, id := range idl {
		delete(a.tags, id)
	}
	return result{"tags": idl}, nil
}

func modifyTagAttributes(a *account, r *request) (result, *apiError) {
	id, err := r.required("tag")
	if err != nil {
		return nil, err
	}
	t, err := lookupOne(r, a.tags, id, tagBase)
	if err != nil {
		return nil, err
	}
	t.modify(r, "tag_name")
	if c := strings.TrimSpace(r.str("color")); c != "" {
		t.color = c
	}
	return result{}, nil
}

// tagPairs parses resource_tag_pairs.N.{tag_id,resource_type,resource_id}.
func tagPairs(a *account, r *request) ([]*tag, []tagLink, *apiError) {
	objs := r.objects("resource_tag_pairs")
	if len(objs) == 0 {
		return nil, nil, errMissing("resource_tag_pairs.1.tag_id")
	}
	tags := make([]*tag, len(objs))
	links := make([]tagLink, len(objs))
	for i, o := range objs {
		for _, f := range []string{"tag_id", "resource_type", "resource_id"} {
			if strings.TrimSpace(o[f]) == "" {
				return nil, nil, errMissing("resource_tag_pairs.N." + f)
			}
		}
		t, err := lookupOne(r, a.tags, strings.TrimSpace(o["tag_id"]), tagBase)
		if err != nil {
			return nil, nil, err
		}
		l := tagLink{resourceID: strings.TrimSpace(o["resource_id"]), resourceType: strings.TrimSpace(o["resource_type"])}
		if err := a.taggable(r, l.resourceType, l.resourceID); err != nil {
			return nil, nil, err
		}
		tags[i], links[i] = t, l
	}
	return tags, links, nil
}

func attachTags(a *account, r *request) (result, *apiError) {
	tags, links, err := tagPairs(a, r)
	if err != nil {
		return nil, err
	}
	for i, t := range tags {
		if !slices.Contains(t.links, links[i]) {
			t.links = append(t.links, links[i])
		}
	}
	return result{}, nil
}

func detachTags(a *account, r *request) (result, *apiError) {
	tags, links, err := tagPairs(a, r)
	if err != nil {
		return nil, err
	}
	for i, t := range tags {
		l := links[i]
		t.links = slices.DeleteFunc(t.links, func(x tagLink) bool { return x == l })
	}
	return result{}, nil
}
