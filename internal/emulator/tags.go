package emulator

import (
	"slices"
	"strings"
)

// Tags are a kind of the generic store (CreateTag, DescribeTags, DeleteTags and ModifyTagAttributes are
// answered there, with the hooks of its kindRows row below); this file keeps their links to other
// resources (AttachTags, DetachTags) and the tags every other resource embeds.

type tagLink struct{ resourceID, resourceType string }

// tagOut is a tag as embedded in other resources.
type tagOut struct {
	TagID   string `json:"tag_id"`
	TagName string `json:"tag_name"`
	Color   string `json:"color"`
}

func init() {
	register("AttachTags", attachTags)
	register("DetachTags", detachTags)
}

// tagRow is the generic store's row of tags: a default color, and the links in DescribeTags.
var tagRow = kindRow{prefix: "tag",
	create: func(a *account, r *request, t *stored, _ int, res result) *apiError {
		if strings.TrimSpace(r.str("color")) == "" {
			t.setStr("color", "#9f9bb7")
		}
		return nil
	},
	describe: func(a *account, r *request, t *stored, out *object) {
		links := a.tagLinks[t.id]
		out.set("resource_count", len(links))
		if verbose, _ := r.flag("verbose"); !verbose {
			return
		}
		pairs, counts, order := []map[string]any{}, map[string]int{}, []string{}
		for _, l := range links {
			pairs = append(pairs, map[string]any{"tag_id": t.id, "resource_type": l.resourceType, "resource_id": l.resourceID})
			if counts[l.resourceType] == 0 {
				order = append(order, l.resourceType)
			}
			counts[l.resourceType]++
		}
		typeCounts := []map[string]any{}
		for _, typ := range order {
			typeCounts = append(typeCounts, map[string]any{"count": counts[typ], "resource_type": typ})
		}
		out.set("resource_tag_pairs", pairs)
		out.set("resource_type_count", typeCounts)
	},
}

// tags returns the tags of the account by id.
func (a *account) tags() map[string]*stored { return a.storeNamed("tag") }

// tagsOf returns the tags attached to a resource, in tag creation order.
func (a *account) tagsOf(resourceID string) []tagOut {
	out := []tagOut{}
	for _, t := range filterSorted(a.tags(), func(t *stored) bool {
		return slices.ContainsFunc(a.tagLinks[t.id], func(l tagLink) bool { return l.resourceID == resourceID })
	}) {
		out = append(out, tagOut{TagID: t.id, TagName: t.name, Color: t.str("color")})
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
		if slices.ContainsFunc(a.tagLinks[id], func(l tagLink) bool { return l.resourceID == resourceID }) {
			return true
		}
	}
	return false
}

// dropTags detaches every tag from a removed resource (and, for a removed tag, its links).
func (a *account) dropTags(resourceID string) {
	delete(a.tagLinks, resourceID)
	for id, links := range a.tagLinks {
		a.tagLinks[id] = slices.DeleteFunc(links, func(l tagLink) bool { return l.resourceID == resourceID })
	}
}

// taggable finds a resource of type typ for AttachTags.
func (a *account) taggable(r *request, typ, id string) *apiError {
	var b *base
	k := storeKinds()[typ]
	if k == nil {
		return errInvalid("resource_type [%s] can not be tagged", clip(typ))
	}
	if v := a.storeOf(k)[id]; v != nil {
		b = &v.base
	}
	if b == nil || !r.inZone(b.zone) {
		return errNotFound(id)
	}
	return nil
}

// tagPairs parses resource_tag_pairs.N.{tag_id,resource_type,resource_id}.
func tagPairs(a *account, r *request) ([]*stored, []tagLink, *apiError) {
	objs := r.objects("resource_tag_pairs")
	if len(objs) == 0 {
		return nil, nil, errMissing("resource_tag_pairs.1.tag_id")
	}
	tags := make([]*stored, len(objs))
	links := make([]tagLink, len(objs))
	for i, o := range objs {
		for _, f := range []string{"tag_id", "resource_type", "resource_id"} {
			if strings.TrimSpace(o[f]) == "" {
				return nil, nil, errMissing("resource_tag_pairs.N." + f)
			}
		}
		t, err := lookupOne(r, a.tags(), strings.TrimSpace(o["tag_id"]))
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
		if !slices.Contains(a.tagLinks[t.id], links[i]) {
			a.tagLinks[t.id] = append(a.tagLinks[t.id], links[i])
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
		a.tagLinks[t.id] = slices.DeleteFunc(a.tagLinks[t.id], func(x tagLink) bool { return x == l })
	}
	return result{}, nil
}
