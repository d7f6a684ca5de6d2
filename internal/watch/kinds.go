package watch

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
)

// Kind describes how to follow one resource kind: which Describe action lists it, which parameter
// takes the ids, where the items are in the answer and what "settled" needs beyond an idle status.
// Every kind is a row of [Kinds]; there is no per-kind code.
type Kind struct {
	// Name is the kind as clients spell it in WatchResourcesRequest.kind, e.g. "instance".
	Name string
	// Action is the Describe action, e.g. "DescribeInstances".
	Action string
	// IDParam is the list parameter that takes the ids, e.g. "instances" (sent as instances.1, ...).
	IDParam string
	// SetField is the array of the answer that holds the items, e.g. "instance_set".
	SetField string
	// IDField is the id field of an item, e.g. "instance_id".
	IDField string
	// HasStatus is false for kinds without status and transition_status (keypair, security_group,
	// vxnet): they settle as soon as they exist (and AppliedField, if set, is 1).
	HasStatus bool
	// IPPath locates the private IP in an item, as dot-separated keys and array indexes
	// ("vxnets.0.private_ip"); empty when the kind has none.
	IPPath string
	// WaitIPIn lists statuses in which the resource is settled only once the IPPath value is
	// non-empty, provided the value's parent exists (an instance with at least one vxnet). Terraform
	// waits like this for running instances.
	WaitIPIn []string
	// AppliedField names a 0/1 field that must be 1 to settle (security groups: is_applied).
	AppliedField string
}

// watched is what the descriptors cannot say about the kinds WatchResources follows: which Describe
// actions they are (in the order clients see the kinds), and where an item's private IP is and what
// else settling needs. Everything else of a row comes from the action's shape ([api.ResourceKindOf]).
var watched = []Kind{
	{Action: "DescribeInstances", IPPath: "vxnets.0.private_ip", WaitIPIn: []string{"running"}},
	{Action: "DescribeVolumes"},
	{Action: "DescribeEips"},
	{Action: "DescribeRouters", IPPath: "private_ip"},
	{Action: "DescribeLoadBalancers", IPPath: "private_ips.0"},
	{Action: "DescribeImages"},
	{Action: "DescribeSnapshots"},
	{Action: "DescribeVxnets"},
	{Action: "DescribeSecurityGroups", AppliedField: "is_applied"},
	{Action: "DescribeKeyPairs"},
	{Action: "DescribeNics", IPPath: "private_ip"},
	{Action: "DescribeS2Servers", IPPath: "private_ip"},
	{Action: "DescribeCaches"},
	{Action: "DescribeRDBs"},
	{Action: "DescribeMongos"},
}

// Kinds is the table of resource kinds WatchResources follows: the rows of watched, completed from
// the descriptors.
var Kinds = mustKinds(watched)

// mustKinds completes each row from the shape of its Describe action. A row whose action is not of
// that shape is a programming error that the package's tests catch, so it panics at start-up.
func mustKinds(rows []Kind) []Kind {
	out := make([]Kind, len(rows))
	for i, row := range rows {
		rk, ok := api.ResourceKindOf(row.Action)
		if !ok {
			panic(fmt.Sprintf("watch: %s is not a Describe action of the derivable shape (api.ResourceKinds)", row.Action))
		}
		row.Name, row.IDParam, row.SetField, row.IDField, row.HasStatus = rk.Name, rk.IDParam, rk.SetField, rk.IDField, rk.HasStatus
		out[i] = row
	}
	return out
}

// kindByName indexes Kinds.
var kindByName = func() map[string]*Kind {
	m := make(map[string]*Kind, len(Kinds))
	for i := range Kinds {
		m[Kinds[i].Name] = &Kinds[i]
	}
	return m
}()

// KindNames returns the kind names of Kinds, in table order.
func KindNames() []string {
	out := make([]string, len(Kinds))
	for i, k := range Kinds {
		out[i] = k.Name
	}
	return out
}

// goneStatuses are the statuses of deleted resources (§7.5 of the protocol notes).
var goneStatuses = []string{"terminated", "deleted", "released", "ceased"}

func isGoneStatus(s string) bool { return slices.Contains(goneStatuses, s) }

// resourceState is what the poller keeps of one resource: the fields that decide settlement, and
// the item itself. It is immutable once built, so watchers share it.
type resourceState struct {
	present    bool   // the Describe answer listed it
	status     string // status ("" for kinds without one)
	transition string // transition_status, "" when idle
	privateIP  string // value at IPPath
	ipPending  bool   // IPPath's parent exists but the IP is still empty
	applied    bool   // AppliedField is 1 (true when the kind has no AppliedField)
	obj        *structpb.Struct
}

// same reports whether s and o differ in nothing a watcher is told about as a change.
func (s *resourceState) same(o *resourceState) bool {
	return s.present == o.present && s.status == o.status && s.transition == o.transition &&
		s.privateIP == o.privateIP && s.ipPending == o.ipPending && s.applied == o.applied
}

// parseResources decodes a Describe answer of k into states by id.
func (k *Kind) parseResources(data []byte) (map[string]*resourceState, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("decode %s answer: %w", k.Action, err)
	}
	var items []map[string]any
	if raw, ok := top[k.SetField]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("decode %s.%s: %w", k.Action, k.SetField, err)
		}
	}
	out := make(map[string]*resourceState, len(items))
	for _, item := range items {
		id, _ := item[k.IDField].(string)
		if id == "" {
			continue
		}
		out[id] = k.state(item)
	}
	return out, nil
}

// state extracts the settlement fields of one item.
func (k *Kind) state(item map[string]any) *resourceState {
	s := &resourceState{present: true, applied: true}
	if k.HasStatus {
		s.status, _ = item["status"].(string)
		s.transition, _ = item["transition_status"].(string)
	}
	if k.IPPath != "" {
		parent, last := lookupPath(item, k.IPPath)
		if parent != nil {
			s.privateIP, _ = index(parent, last).(string)
			s.ipPending = s.privateIP == ""
		}
	}
	if k.AppliedField != "" {
		s.applied = truthy(item[k.AppliedField])
	}
	if obj, err := structpb.NewStruct(item); err == nil {
		s.obj = obj
	}
	return s
}

// lookupPath walks all but the last segment of a dot path through objects and arrays and returns
// the container holding the last segment, or nil when some step is missing.
func lookupPath(v any, path string) (any, string) {
	segs := strings.Split(path, ".")
	for _, seg := range segs[:len(segs)-1] {
		v = index(v, seg)
		if v == nil {
			return nil, ""
		}
	}
	last := segs[len(segs)-1]
	switch c := v.(type) {
	case []any:
		if i, err := strconv.Atoi(last); err != nil || i < 0 || i >= len(c) {
			return nil, ""
		}
	case map[string]any:
	default:
		return nil, ""
	}
	return v, last
}

// index returns v[seg] for an object, or v[int(seg)] for an array; nil when absent.
func index(v any, seg string) any {
	switch c := v.(type) {
	case map[string]any:
		return c[seg]
	case []any:
		i, err := strconv.Atoi(seg)
		if err != nil || i < 0 || i >= len(c) {
			return nil
		}
		return c[i]
	}
	return nil
}

// truthy reports whether a JSON value is 1, true or "1".
func truthy(v any) bool {
	switch x := v.(type) {
	case float64:
		return x == 1
	case bool:
		return x
	case string:
		return x == "1" || x == "true"
	}
	return false
}

// evaluate decides, for a watcher waiting for target ("" = any idle status), whether s is the end
// of its wait: settled (reached what was awaited) or gone (deleted while something else was awaited).
func (k *Kind) evaluate(s *resourceState, target string) (settled, gone bool) {
	if !s.present {
		if isGoneStatus(target) {
			return true, false
		}
		return false, true
	}
	if k.HasStatus && isGoneStatus(s.status) {
		switch {
		case s.status == target || (isGoneStatus(target) && s.status == "ceased"):
			return true, false
		case !isGoneStatus(target):
			return false, true
		}
		return false, false // e.g. terminated while waiting for ceased
	}
	if s.transition != "" || !s.applied {
		return false, false
	}
	if k.HasStatus {
		if target != "" && s.status != target {
			return false, false
		}
		if target == "" && (s.status == "pending" || s.status == "") {
			return false, false
		}
	}
	if s.ipPending && slices.Contains(k.WaitIPIn, s.status) {
		return false, false
	}
	return true, false
}

// event builds the ResourceEvent of s for one watcher.
func (k *Kind) event(id string, s *resourceState, settled, gone bool) *iaasv1.ResourceEvent {
	return &iaasv1.ResourceEvent{
		Kind:             k.Name,
		ResourceId:       id,
		Status:           s.status,
		TransitionStatus: s.transition,
		Settled:          settled,
		Gone:             gone,
		PrivateIp:        s.privateIP,
		Resource:         s.obj,
	}
}
