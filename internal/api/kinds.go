package api

import (
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// ResourceKind is a kind of resource as its Describe action lists it, for watches: which parameter
// takes the ids, where the items are in the answer, and whether items have a status.
type ResourceKind struct {
	// Name is the kind, the item set's name without "_set": "instance", "security_group".
	Name string
	// Action is the Describe action, "DescribeInstances".
	Action string
	// IDParam is the list parameter that takes the ids, "instances" (sent as instances.1, ...).
	IDParam string
	// SetField is the array of the answer that holds the items, "instance_set".
	SetField string
	// IDField is the id field of an item, "instance_id".
	IDField string
	// HasStatus is set when items have a status field (and usually transition_status).
	HasStatus bool
}

// ResourceKinds returns the kinds of every Describe action of the derivable shape, sorted by action:
// a typed, read-only, unary Describe action whose response has one repeated message field <x>_set
// whose items have a string field <x>_id, and whose request takes a list of ids in a repeated string
// field named the plural of <x> (<x>s, <x>es, or <x> with y → ies). Two actions may list the same kind
// name (DescribeInstances, DescribeVxnetInstances); [ResourceKindOf] selects by action.
func ResourceKinds() []ResourceKind { return slices.Clone(load().kinds) }

// ResourceKindOf returns the resource kind listed by a Describe action, and false when the action is
// not of the derivable shape.
func ResourceKindOf(action string) (ResourceKind, bool) {
	kinds := load().kinds
	if i, ok := slices.BinarySearchFunc(kinds, action, func(k ResourceKind, a string) int { return strings.Compare(k.Action, a) }); ok {
		return kinds[i], true
	}
	return ResourceKind{}, false
}

// deriveKinds finds the Describe actions of the derivable shape in t.
func deriveKinds(t *table) []ResourceKind {
	var out []ResourceKind
	for _, action := range t.actions {
		m := t.byAction[action]
		if !strings.HasPrefix(action, "Describe") || !m.ReadOnly {
			continue
		}
		if k, ok := kindOf(m); ok {
			out = append(out, k)
		}
	}
	return out // t.actions is sorted
}

// kindOf derives the resource kind of one Describe method.
func kindOf(m *Method) (ResourceKind, bool) {
	var set protoreflect.FieldDescriptor
	out := m.Output.Descriptor().Fields()
	for i := 0; i < out.Len(); i++ {
		f := out.Get(i)
		if f.IsList() && f.Kind() == protoreflect.MessageKind && strings.HasSuffix(WireName(f), "_set") {
			if set != nil {
				return ResourceKind{}, false // more than one set: which is the kind's is not clear
			}
			set = f
		}
	}
	if set == nil {
		return ResourceKind{}, false
	}
	name := strings.TrimSuffix(WireName(set), "_set")
	id := FieldByWireName(set.Message(), name+"_id")
	if name == "" || id == nil || id.IsList() || id.Kind() != protoreflect.StringKind {
		return ResourceKind{}, false
	}
	in := m.Input.Descriptor()
	var param protoreflect.FieldDescriptor
	for _, p := range plurals(name) {
		if f := FieldByWireName(in, p); f != nil && f.IsList() && f.Kind() == protoreflect.StringKind {
			param = f
			break
		}
	}
	if param == nil {
		return ResourceKind{}, false
	}
	status := FieldByWireName(set.Message(), "status")
	return ResourceKind{
		Name:      name,
		Action:    m.Action,
		IDParam:   WireName(param),
		SetField:  WireName(set),
		IDField:   WireName(id),
		HasStatus: status != nil && !status.IsList() && status.Kind() == protoreflect.StringKind,
	}, true
}

// plurals returns the English plurals QingCloud uses for the id list parameter of a kind.
func plurals(name string) []string {
	out := []string{name + "s", name + "es"}
	if base, ok := strings.CutSuffix(name, "y"); ok {
		out = append(out, base+"ies")
	}
	return out
}
