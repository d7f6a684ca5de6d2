package emulator

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
)

// This file is the generic resource store: every kind of resource that a Describe action of the
// descriptors lists (api.ResourceKinds) and that no hand-written handler models is kept here as a
// generated qingcloud.iaas.v1 item message, and every action on it that is not modelled is answered
// from its descriptors:
//
//   - Describe<Kind>s lists the stored items (ids, status.N, search_word, zone, and any other request
//     parameter that names a field of the item), paged by offset/limit;
//   - an action whose answer has an id of a kind (<kind>_id, or the kind's id list) and whose name
//     starts with a create verb (Create, Add, Upload, Allocate, Clone, Associate, Deploy, Run) creates
//     the items; the request's parameters fill the item's fields of the same name (or of the same name
//     plus _id, as router fills router_id); a delayed action starts them pending and its job makes
//     them active;
//   - Delete, Start, Stop, Restart, Resize, Update, Release on a list of ids move the named items
//     through the verb's transition (with the action's job when it is delayed), Change and Resize
//     set the fields their parameters name when the job ends; Modify...Attributes sets the fields its
//     parameters name at once;
//   - an item without a zone (a system image) is seen in every zone and can not be changed;
//   - the named ids of a kind that can be created must exist (2100 otherwise);
//   - every other id of the answer echoes the request parameter it names (router_id ← router,
//     cache_ids ← caches), or is a fresh id.
//
// A simple family is therefore a row of kindRows (its id prefix and final status) or nothing at all.

// kindRow is what the descriptors do not say about a kind of the generic store.
type kindRow struct {
	prefix string // id prefix; default: the initials of the kind's words
	// system names an item without a zone in refusals ("the basic network": "vxnet [vxnet-0] is the
	// basic network, can not be deleted"); default "a system <kind>", "can not be changed".
	system string
	status string // status once created; default "active" for kinds with a status
	// create, when set, checks the create request further and completes the new item (the i-th of
	// the request); it may add fields to the answer res or set the item's id.
	create func(a *account, r *request, s *stored, i int, res result) *apiError
	// deletable, when set, refuses to delete an item (1400 saying why).
	deletable func(a *account, s *stored) *apiError
	// describe, when set, adds what relations say to an item rendered for the Describe action.
	describe func(a *account, r *request, s *stored, out *object)
	// verbs are the kind's rules for the lifecycle verbs and Modify on its items, by verb.
	verbs map[string]verbRule
	// statusless kinds have a status field but no lifecycle: their describe hook says the status,
	// and Delete removes them at once (load balancer backends).
	statusless bool
	// filter, when set, is a further filter of the Describe action (a parameter that names a
	// relation, not a field).
	filter func(a *account, r *request, s *stored) bool
	// valid, when set, checks the parameters of an action that names or creates items of the kind,
	// before anything is looked up or changed (1100 saying what to fix).
	valid func(r *request) *apiError
	// less, when set, orders the items of a Describe answer (default: newest first, then by id).
	less func(x, y *stored) bool
}

// verbRule is what a kind adds to a verb of the generic store on one of its items.
type verbRule struct {
	from       []string // the statuses the item must be in; 1400 "can not be <past>" otherwise
	past       string   // the verb in that message: "started"; default: the verb's participle
	transition string   // transition_status while the verb's job runs, instead of verbOps'
	to         string   // the status once the verb is done, instead of verbOps' ("running")
	op         *op      // the verb's transition when verbOps has none for every kind (Cease, Reset)
	quiet      bool     // no transition_status while the job runs (the transition is only its busy label)
	// check, when set, refuses the request on the item further (bad parameters, a relation).
	check func(a *account, r *request, s *stored) *apiError
	// done, when set, runs when the verb takes effect on the item: when its job succeeds, or at once.
	done func(a *account, r *request, s *stored)
}

// kindRows are the kinds whose id prefix, status or hooks differ from the defaults.
var kindRows = map[string]kindRow{
	"keypair":                  keypairRow,
	"tag":                      tagRow,
	"loadbalancer":             loadbalancerRow,
	"loadbalancer_listener":    listenerRow,
	"loadbalancer_backend":     backendRow,
	"snapshot":                 snapshotRow,
	"security_group":           securityGroupRow,
	"security_group_rule":      sgRuleRow,
	"vxnet":                    vxnetRow,
	"router":                   routerRow,
	"server_certificate":       {prefix: "sc"},
	"loadbalancer_policy":      {prefix: "lbp"},
	"loadbalancer_policy_rule": {prefix: "lbpr"},
	"router_static":            {prefix: "rtrs"},
	"security_group_ipset":     {prefix: "ipset"},
	"security_group_snapshot":  {prefix: "sgs"},
	"cache_parameter_group":    {prefix: "cpg"},
	"cache":                    {prefix: "c"},
	"cache_node":               {prefix: "cn"},
	"cluster":                  {prefix: "cl"},
	"node":                     {prefix: "cln"},
	"dns_alias":                {prefix: "dnsa"},
	"mongo":                    {prefix: "mongo"},
	"rdb":                      {prefix: "rdb"},
	"s2_server":                {prefix: "s2"},
	"nic":                      nicRow,
	"instance":                 instanceRow,
	"eip":                      eipRow,
	"volume":                   volumeRow,
	"image":                    imageRow,
	"notification_list":        {prefix: "nl"},
	"access_key":               {prefix: "ak"},
}

// storeKind is one kind of the generic store.
type storeKind struct {
	api.ResourceKind
	item      protoreflect.MessageType // the item message of SetField
	row       kindRow
	prefix    string
	status    string // "" for kinds without status
	creatable bool   // some action creates items of this kind
	plan      atomic.Pointer[itemPlan]
}

// createVerbs start the name of actions that create the ids of their answer.
var createVerbs = []string{"Create", "Add", "Upload", "Allocate", "Clone", "Associate", "Deploy", "Run"}

// verbOps are the transitions of the lifecycle verbs on stored items with a status.
var verbOps = map[string]op{
	"Delete":    {transition: "deleting", to: "deleted"},
	"Start":     {transition: "starting", to: "active"},
	"Stop":      {transition: "stopping", to: "stopped"},
	"Restart":   {transition: "restarting", to: "active"},
	"Resize":    {transition: "resizing"},
	"Update":    {transition: "updating"},
	"Release":   {transition: "releasing", to: "released"},
	"Change":    {label: "updating"}, // sets the fields the parameters name when the job ends
	"PowerOff":  {transition: "poweroffing", to: "poweroffed"},
	"PowerOn":   {transition: "poweroning", to: "active"},
	"Terminate": {transition: "terminating", to: "terminated"},
}

// verbOp returns the transition of a lifecycle verb on the items of k: its rule's op, or verbOps'
// with the rule's target status; false when the verb is no lifecycle verb of k.
func (k *storeKind) verbOp(verb string) (op, bool) {
	rule := k.row.verbs[verb]
	if rule.op != nil {
		return *rule.op, true
	}
	o, ok := verbOps[verb]
	if rule.to != "" {
		o.to = rule.to
	}
	return o, ok
}

// participle is the past participle of a verb, for messages ("can not be stopped").
func participle(verb string) string {
	v := strings.ToLower(verb)
	switch {
	case strings.HasSuffix(v, "e"):
		return v + "d"
	case strings.HasSuffix(v, "op"):
		return v + "ped"
	}
	return v + "ed"
}

// verbOf returns the leading verb of an action name ("Delete" of "DeleteCaches").
func verbOf(action string) string {
	for _, v := range []string{"PowerOff", "PowerOn"} { // verbs of two words
		if strings.HasPrefix(action, v) {
			return v
		}
	}
	for i := 1; i < len(action); i++ {
		if action[i] >= 'A' && action[i] <= 'Z' {
			return action[:i]
		}
	}
	return action
}

func isCreateVerb(v string) bool {
	for _, c := range createVerbs {
		if v == c {
			return true
		}
	}
	return false
}

// storeKinds returns the kinds of the generic store by name.
var storeKinds = sync.OnceValue(func() map[string]*storeKind {
	modelledKind := map[string]bool{}
	for _, k := range api.ResourceKinds() {
		// A kind with a row is stored even when a Describe of its items is modelled (a thin handler
		// of DescribeInstances that validates, DescribeVxnetInstances); its first Describe lists it.
		if _, rowed := kindRows[k.Name]; !rowed && actions[k.Action].h != nil {
			modelledKind[k.Name] = true
		}
	}
	out := map[string]*storeKind{}
	for _, k := range api.ResourceKinds() {
		if _, rowed := kindRows[k.Name]; actions[k.Action].h != nil && !rowed || modelledKind[k.Name] || out[k.Name] != nil {
			continue
		}
		m := api.ByAction(k.Action)
		set := api.FieldByWireName(m.Output.Descriptor(), k.SetField)
		mt, err := protoregistry.GlobalTypes.FindMessageByName(set.Message().FullName())
		if err != nil {
			continue
		}
		row := kindRows[k.Name]
		sk := &storeKind{ResourceKind: k, item: mt, row: row, prefix: row.prefix, status: row.status}
		if sk.prefix == "" {
			for _, w := range strings.Split(k.Name, "_") {
				sk.prefix += w[:1]
			}
		}
		if k.HasStatus && sk.status == "" {
			sk.status = "active"
		}
		if !k.HasStatus || row.statusless {
			sk.status = ""
		}
		out[k.Name] = sk
	}
	for _, sa := range specActions() { // a handler may create a stored kind too (CreateSnapshots)
		if !isCreateVerb(verbOf(sa.name)) {
			continue
		}
		fields := sa.out.Fields()
		for i := 0; i < fields.Len(); i++ {
			if k := kindOfIDField(out, fields.Get(i)); k != nil {
				k.creatable = true
			}
		}
	}
	return out
})

// kindOfIDField returns the stored kind whose ids an answer field holds: <kind>_id or <kind> (the
// rdb of CreateRDB), or a list named the kind's id parameter, <kind>_ids or new_<kind>_ids.
func kindOfIDField(kinds map[string]*storeKind, fd protoreflect.FieldDescriptor) *storeKind {
	if fd.Kind() != protoreflect.StringKind {
		return nil
	}
	name := api.WireName(fd)
	if !fd.IsList() {
		if k := kinds[name]; k != nil {
			return k
		}
		if base, ok := strings.CutSuffix(name, "_id"); ok {
			return kinds[base]
		}
		return nil
	}
	for _, k := range kinds {
		if name == k.IDParam || name == k.Name+"_ids" || name == "new_"+k.Name+"_ids" {
			return k
		}
	}
	return nil
}

// stored is one item of the generic store.
type stored struct {
	base
	kind *storeKind
	msg  proto.Message // the item's fields other than those of base
}

// storeOf returns the items of kind k in a, creating the map.
func (a *account) storeOf(k *storeKind) map[string]*stored { return a.storeNamed(k.Name) }

// storeNamed returns the items of the kind named kind, creating the map (for the hooks of kindRows,
// which can not call storeKinds).
func (a *account) storeNamed(kind string) map[string]*stored {
	m := a.store[kind]
	if m == nil {
		m = map[string]*stored{}
		a.store[kind] = m
	}
	return m
}

// field returns the field of s's item named name on the wire; it panics on a name the item does not
// have (a programming error, caught by run as a 5000).
func (s *stored) field(name string) protoreflect.FieldDescriptor {
	fd := api.FieldByWireName(s.msg.ProtoReflect().Descriptor(), name)
	if fd == nil {
		panic("emulator: " + s.kind.Name + " has no field " + name)
	}
	return fd
}

// str returns a string field of s's item.
func (s *stored) str(name string) string { return s.msg.ProtoReflect().Get(s.field(name)).String() }

// setStr sets a string field of s's item.
func (s *stored) setStr(name, v string) {
	s.msg.ProtoReflect().Set(s.field(name), protoreflect.ValueOfString(v))
}

// strs returns a repeated string field of s's item.
func (s *stored) strs(name string) []string {
	l := s.msg.ProtoReflect().Get(s.field(name)).List()
	out := make([]string, l.Len())
	for i := range out {
		out[i] = l.Get(i).String()
	}
	return out
}

// setStrs replaces a repeated string field of s's item.
func (s *stored) setStrs(name string, v []string) {
	m := s.msg.ProtoReflect()
	fd := s.field(name)
	m.Clear(fd)
	l := m.Mutable(fd).List()
	for _, x := range v {
		l.Append(protoreflect.ValueOfString(x))
	}
}

// describeStoreKind returns the stored kind that a Describe action lists, or nil.
func describeStoreKind(action string) *storeKind {
	k, ok := api.ResourceKindOf(action)
	if !ok {
		return nil
	}
	sk := storeKinds()[k.Name]
	if sk == nil || sk.Action != action {
		return nil
	}
	return sk
}

// standardParams are the request parameters of Describe actions that are not item filters.
var standardParams = map[string]bool{
	"zone": true, "offset": true, "limit": true, "verbose": true, "search_word": true, "owner": true,
	"status": true, "tags": true, "project_id": true, "sort_key": true, "reverse": true,
}

// describeStored lists the stored items of k.
func (a *account) describeStored(r *request, sa *specAction, k *storeKind) (result, *apiError) {
	keep := a.describeFilter(r, k.IDParam)
	type eq struct {
		in *protoreflect.FieldDescriptor // the message field of the item that holds fd, or nil
		fd protoreflect.FieldDescriptor  // a scalar field equal to v, or a string list holding v
		v  protoreflect.Value
	}
	var filters []eq
	fields := sa.in.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		name := api.WireName(fd)
		v := strings.TrimSpace(r.params[name])
		if fd.IsList() || fd.IsMap() || fd.Kind() == protoreflect.MessageKind || standardParams[name] || v == "" {
			continue
		}
		in, target := itemFilterField(k.item.Descriptor(), name)
		if target == nil {
			continue
		}
		val, err := scalarOf(target, v)
		if err != nil || !val.IsValid() {
			return nil, errInvalid("parameter [%s] is not a valid %s", name, target.Kind())
		}
		filters = append(filters, eq{in, target, val})
	}
	items := filterSorted(a.storeOf(k), func(s *stored) bool {
		if !keep(&s.base) || k.row.filter != nil && !k.row.filter(a, r, s) {
			return false
		}
		for _, f := range filters {
			m := s.msg.ProtoReflect()
			if f.in != nil {
				m = m.Get(*f.in).Message()
			}
			if !f.fd.IsList() && !m.Get(f.fd).Equal(f.v) || f.fd.IsList() && !listHas(m.Get(f.fd).List(), f.v.String()) {
				return false
			}
		}
		return true
	})
	if k.row.less != nil {
		sort.SliceStable(items, func(i, j int) bool { return k.row.less(items[i], items[j]) })
	}
	return describeResult(r, k.SetField, items, func(s *stored) *object {
		out := a.renderStored(s)
		if k.row.describe != nil {
			k.row.describe(a, r, s, out)
		}
		return out
	})
}

func listHas(l protoreflect.List, v string) bool {
	for i := 0; i < l.Len(); i++ {
		if l.Get(i).String() == v {
			return true
		}
	}
	return false
}

// itemField returns the scalar field of an item that a request parameter names: the same wire name,
// or the name plus _id (router → router_id).
func itemField(md protoreflect.MessageDescriptor, param string) protoreflect.FieldDescriptor {
	for _, name := range []string{param, param + "_id"} {
		if fd := api.FieldByWireName(md, name); fd != nil && !fd.IsList() && !fd.IsMap() && fd.Kind() != protoreflect.MessageKind {
			return fd
		}
	}
	return nil
}

// itemFilterField returns the field of an item that a Describe parameter filters on: a scalar field
// of the item (itemField), a string list named the parameter plus s (instance_id of DescribeKeyPairs:
// one of instance_ids), or a scalar field of one of the item's message fields (resource_id of
// DescribeSnapshots: resource.resource_id), which in then names.
func itemFilterField(md protoreflect.MessageDescriptor, param string) (in *protoreflect.FieldDescriptor, fd protoreflect.FieldDescriptor) {
	if fd := itemField(md, param); fd != nil {
		return nil, fd
	}
	if l := api.FieldByWireName(md, param+"s"); l != nil && l.IsList() && l.Kind() == protoreflect.StringKind {
		return nil, l
	}
	for i := 0; i < md.Fields().Len(); i++ {
		m := md.Fields().Get(i)
		if m.Kind() != protoreflect.MessageKind || m.IsList() || m.IsMap() || m.Message().FullName() == "google.protobuf.Timestamp" {
			continue
		}
		if fd := itemField(m.Message(), param); fd != nil {
			return &m, fd
		}
	}
	return nil, nil
}

// secretField reports whether an item field holds a secret that answers never carry.
func secretField(name string) bool {
	for _, s := range []string{"private_key", "passwd", "password", "secret"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// fill sets the scalar fields of s's message that the request's parameters name; only parameters of
// the action's request message count (never action, zone or an unknown extra parameter). An empty
// value is no value, but for the strings of a Modify action, which it clears.
func (s *stored) fill(r *request) *apiError {
	modify := verbOf(r.action) == "Modify"
	m := s.msg.ProtoReflect()
	fields := m.Descriptor().Fields()
	param := func(name string) (string, bool) {
		if sa := specActions()[r.action]; sa == nil || api.FieldByWireName(sa.in, name) == nil || name == "zone" {
			return "", false
		}
		v, ok := r.params[name]
		return v, ok
	}
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		name := api.WireName(fd)
		if fd.IsList() || fd.IsMap() || fd.Kind() == protoreflect.MessageKind || secretField(name) || name == s.kind.IDField {
			continue
		}
		v, ok := param(name)
		if !ok && strings.HasSuffix(name, "_id") {
			v, ok = param(strings.TrimSuffix(name, "_id"))
		}
		if !ok || strings.TrimSpace(v) == "" && (!modify || fd.Kind() != protoreflect.StringKind) {
			continue
		}
		val, err := scalarOf(fd, strings.TrimSpace(v))
		if err != nil {
			return errInvalid("parameter [%s]: %v", name, err)
		}
		m.Set(fd, val)
	}
	if v, _ := param(s.kind.Name + "_name"); v != "" {
		s.name = v
	}
	if v, ok := param("description"); ok {
		s.description = v
	}
	return nil
}

// scalarOf parses a parameter value for a scalar field (its syntax was checked by validate).
func scalarOf(fd protoreflect.FieldDescriptor, v string) (protoreflect.Value, error) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(v), nil
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(v == "1" || strings.EqualFold(v, "true")), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, err := strconv.ParseInt(v, 10, 32)
		return protoreflect.ValueOfInt32(int32(n)), err
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, err := strconv.ParseInt(v, 10, 64)
		return protoreflect.ValueOfInt64(n), err
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, err := strconv.ParseUint(v, 10, 32)
		return protoreflect.ValueOfUint32(uint32(n)), err
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, err := strconv.ParseUint(v, 10, 64)
		return protoreflect.ValueOfUint64(n), err
	case protoreflect.FloatKind:
		f, err := strconv.ParseFloat(v, 32)
		return protoreflect.ValueOfFloat32(float32(f)), err
	case protoreflect.DoubleKind:
		f, err := strconv.ParseFloat(v, 64)
		return protoreflect.ValueOfFloat64(f), err
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByName(protoreflect.Name(v)); ev != nil {
			return protoreflect.ValueOfEnum(ev.Number()), nil
		}
		n, err := strconv.Atoi(v)
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), err
	}
	return protoreflect.Value{}, nil
}

// renderStored renders an item: its message with the fields of base set, and [] for its unset
// lists of ids.
func (a *account) renderStored(s *stored) *object {
	m := s.msg.ProtoReflect()
	p := s.kind.itemPlan(m.Descriptor())
	o := newObject(m, len(p.names)+6) // and the hooks' keys
	o.emptyLists = true
	slots := o.keys[:len(p.names)] // by place in p.names; unset while the name is ""
	for _, op := range p.ops {
		k := objectKey{name: p.names[op.slot], kind: keyString}
		switch op.src {
		case srcID:
			k.s = s.id
		case srcName:
			k.s = s.name
		case srcDescription:
			k.s = s.description
		case srcZone:
			k.s = s.zone
		case srcOwner:
			if s.zone == "" {
				continue // a system item (no zone) has its own
			}
			k.s = a.owner
		case srcStatus:
			k.s = s.status
		case srcTransition:
			k.s = s.transition
		case srcCreated, srcStatusTime:
			t := s.created
			if op.src == srcStatusTime {
				t = s.statusTime
			}
			if t.IsZero() {
				continue
			}
			k.kind, k.n = keyTime, t.Unix()
		case srcTags:
			k.kind, k.v = keyValue, noTags
			if tags := a.tagsOf(s.id); len(tags) > 0 {
				k.v = tags
			}
		}
		if op.clearEmpty && k.kind == keyString && k.s == "" {
			k = objectKey{name: k.name, kind: keyRemoved} // setting "" clears a field without presence
		}
		slots[op.slot] = k
	}
	n := 0
	for _, k := range slots {
		if k.name != "" {
			slots[n] = k
			n++
		}
	}
	clear(slots[n:])
	o.keys = slots[:n]
	return o
}

// noTags is the tags of an item without any: [] (one value for all of them).
var noTags any = []tagOut{}

// itemPlan is what renderStored sets on the items of a kind: the keys it may set, sorted, and the
// operations that set them, in order (a later one overrides an earlier one of the same key).
type itemPlan struct {
	md    protoreflect.MessageDescriptor
	names []string
	ops   []itemOp
}

// itemOp sets a key of an item from one of its base fields.
type itemOp struct {
	slot       int // the key's place in itemPlan.names
	src        itemSrc
	clearEmpty bool // "" removes the key (a string field without presence)
}

// itemSrc is where an itemOp takes its value from.
type itemSrc uint8

const (
	srcID itemSrc = iota
	srcName
	srcDescription
	srcZone
	srcOwner
	srcStatus
	srcTransition
	srcCreated
	srcStatusTime
	srcTags
)

// itemPlan returns the plan of the items of k whose message is md (made once for k's item type).
func (k *storeKind) itemPlan(md protoreflect.MessageDescriptor) *itemPlan {
	if p := k.plan.Load(); p != nil && p.md == md {
		return p
	}
	type named struct {
		name string
		op   itemOp
	}
	var ops []named
	str := func(name string, src itemSrc) {
		if fd := api.FieldByWireName(md, name); fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsList() {
			ops = append(ops, named{name, itemOp{src: src, clearEmpty: !fd.HasPresence()}})
		}
	}
	tm := func(name string, src itemSrc) {
		if fd := api.FieldByWireName(md, name); fd != nil && fd.Kind() == protoreflect.MessageKind &&
			fd.Message().FullName() == "google.protobuf.Timestamp" {
			ops = append(ops, named{name, itemOp{src: src}})
		}
	}
	str(k.IDField, srcID)
	str(k.Name+"_name", srcName)
	str("description", srcDescription)
	str("zone_id", srcZone)
	str("owner", srcOwner)
	if k.HasStatus {
		str("status", srcStatus)
		str("transition_status", srcTransition)
	}
	tm("create_time", srcCreated)
	tm("status_time", srcStatusTime)
	if fd := api.FieldByWireName(md, "tags"); fd != nil && fd.IsList() {
		ops = append(ops, named{"tags", itemOp{src: srcTags}})
	}
	if api.FieldByWireName(md, "transition_status") != nil {
		// "" is a value here, not an absent field
		ops = append(ops, named{"transition_status", itemOp{src: srcTransition}})
	}
	p := &itemPlan{md: md}
	for _, op := range ops {
		if !slices.Contains(p.names, op.name) {
			p.names = append(p.names, op.name)
		}
	}
	slices.Sort(p.names)
	for _, op := range ops {
		op.op.slot = slices.Index(p.names, op.name)
		p.ops = append(p.ops, op.op)
	}
	k.plan.Store(p)
	return p
}

// storedRef is a stored item that a request names, and whether it is named in a list parameter.
type storedRef struct {
	it   *stored
	list bool
	// target is set for the item a Modify changes: of the kind the action names
	// (ModifyLoadBalancerAttributes: the load balancer, not the security group it names), or of any
	// singular parameter when the action names none of them.
	target bool
}

// refs returns the stored items the request names: a list parameter named a kind's id parameter, or
// a singular parameter named the kind. An unknown id of a kind that can be created is 2100.
func (a *account) refs(r *request, sa *specAction) ([]storedRef, *apiError) {
	kinds := storeKinds()
	byParam := map[string]*storeKind{}
	for _, k := range kinds {
		byParam[k.IDParam] = k
	}
	var out []storedRef
	fields := sa.in.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Kind() != protoreflect.StringKind {
			continue
		}
		name := api.WireName(fd)
		var k *storeKind
		var ids []string
		list := fd.IsList()
		switch {
		case list:
			k, ids = byParam[name], r.list(name)
		case byParam[name] != nil:
			// An id list the spec declares as one string (mongos of StartMongos): name or name.N.
			k, ids, list = byParam[name], r.list(name), true
			if v := strings.TrimSpace(r.params[name]); v != "" {
				ids = append(ids, v)
			}
		default:
			k = kinds[name]
			if v := strings.TrimSpace(r.params[name]); v != "" {
				ids = []string{v}
			}
		}
		if k == nil {
			continue
		}
		if _, ruled := k.row.verbs[verbOf(sa.name)]; ruled && len(ids) == 0 && list {
			return nil, errMissing(name + ".1") // a verb the kind rules acts on named items
		} else if ruled && len(ids) == 0 && verbOf(sa.name) == "Modify" {
			return nil, errMissing(name)
		}
		for _, id := range ids {
			it := a.storeOf(k)[id]
			if it == nil || it.zone != "" && !r.inZone(it.zone) {
				if k.creatable {
					return nil, errNotFound(id)
				}
				continue
			}
			out = append(out, storedRef{it: it, list: list, target: !list})
		}
	}
	named := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(sa.name, "Modify"), "Attributes"))
	if slices.ContainsFunc(out, func(ref storedRef) bool { return strings.ReplaceAll(ref.it.kind.Name, "_", "") == named }) {
		for i := range out {
			out[i].target = out[i].target && strings.ReplaceAll(out[i].it.kind.Name, "_", "") == named
		}
	}
	return out, nil
}

// create adds n items of kind k made by the request (pending under job j when it is delayed); the
// kind's create hook may add fields to the answer res.
func (a *account) create(r *request, k *storeKind, j *job, n int, res result) ([]string, *apiError) {
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		status := k.status
		if j != nil && status != "" {
			status = "pending"
		}
		s := &stored{base: a.newBase(r, k.Name, k.prefix, "", status), kind: k, msg: k.item.New().Interface()}
		if err := s.fill(r); err != nil {
			return nil, err
		}
		if k.row.create != nil {
			if err := k.row.create(a, r, s, i, res); err != nil {
				return nil, err
			}
		}
		a.storeOf(k)[s.id] = s
		if j != nil && status != "" {
			a.begin(&s.base, j, i, n, op{transition: "creating", to: k.status, failTo: "ceased"}, a.remover(s))
		}
		out = append(out, s.id)
	}
	return out, nil
}

// check refuses the lifecycle verb of the request on a stored item: busy, deleted, not in a status
// of the kind's rule for the verb, or refused by the rule's check or the kind's deletable hook.
func (a *account) check(r *request, ref storedRef, verb string) *apiError {
	s := ref.it
	_, lifecycle := s.kind.verbOp(verb)
	if !(verb == "Modify" && ref.target || lifecycle && ref.list) {
		return nil
	}
	if s.zone == "" {
		if s.kind.row.system != "" {
			done := map[string]string{"Delete": "deleted", "Modify": "modified"}[verb]
			if done == "" {
				done = "changed"
			}
			return errDenied("%s [%s] is %s, can not be %s", s.kind.Name, s.id, s.kind.row.system, done)
		}
		return errDenied("%s [%s] is a system %s, can not be changed", s.kind.Name, s.id, s.kind.Name)
	}
	rule := s.kind.row.verbs[verb]
	if len(rule.from) > 0 {
		past := rule.past
		if past == "" {
			past = participle(verb)
		}
		if err := s.need(past, rule.from...); err != nil {
			return err
		}
	} else if err := s.alive(); err != nil {
		return err
	} else if err := s.idle(); err != nil && verb != "Modify" { // attributes change at any time
		return err
	}
	if verb == "Delete" && s.kind.row.deletable != nil {
		if err := s.kind.row.deletable(a, s); err != nil {
			return err
		}
	}
	if rule.check != nil {
		return rule.check(a, r, s)
	}
	return nil
}

// apply moves a stored item through the lifecycle verb of the request (under job j when delayed),
// then runs the done of the kind's rule for the verb; check has accepted it.
func (a *account) apply(r *request, ref storedRef, verb string, j *job, i, n int) *apiError {
	s := ref.it
	rule := s.kind.row.verbs[verb]
	done := func() {
		if verb == "Change" || verb == "Resize" {
			_ = s.fill(r) // the parameters' syntax was checked by validate and the kind's valid
		}
		if rule.done != nil {
			rule.done(a, r, s)
		}
	}
	o, ok := s.kind.verbOp(verb)
	switch {
	case verb == "Modify" && ref.target:
		if err := s.fill(r); err != nil {
			return err
		}
		s.modify(r, s.kind.Name+"_name")
	case !ref.list || !ok:
		return nil
	case s.kind.status == "":
		if verb == "Delete" {
			a.remover(s)()
		}
	case j != nil:
		if rule.transition != "" {
			o.transition = rule.transition
		}
		if rule.quiet {
			o.label, o.transition = o.transition, ""
		}
		o.ok = done
		a.begin(&s.base, j, i, n, o, a.remover(s))
		return nil
	case o.to != "":
		s.status, s.statusTime = o.to, r.now
		if terminal(s.status) {
			a.retire(&s.base, r.now, a.remover(s))
		}
	}
	done()
	return nil
}

// genericAnswer answers an action that no handler models, from its descriptors and the generic
// store.
func (a *account) genericAnswer(r *request, sa *specAction) (_ result, err *apiError) {
	if k := describeStoreKind(sa.name); k != nil {
		return a.describeStored(r, sa, k)
	}
	if err := validKinds(r, sa); err != nil {
		return nil, err
	}
	refs, err := a.refs(r, sa)
	if err != nil {
		return nil, err
	}
	verb := verbOf(sa.name)
	for _, ref := range refs { // all or nothing: every named item is checked before any changes
		if err := a.check(r, ref, verb); err != nil {
			return nil, err
		}
	}
	res := result{}
	fields := sa.out.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		switch name := api.WireName(fd); {
		case name == "action" || name == "ret_code":
		case name == "total_count":
			res[name] = 0
		case fd.IsList():
			res[name] = []any{}
		}
	}
	var j *job
	if sa.jobID {
		ids := requestIDs(sa, r.params)
		for _, ref := range refs {
			if ref.list && !slices.Contains(ids, ref.it.id) {
				ids = append(ids, ref.it.id) // the items acted on, named in an optional list
			}
		}
		j = a.newJob(r, ids)
		res["job_id"] = j.id
		defer func() {
			if err != nil {
				a.dropJob(j) // a refused request leaves no job
			}
		}()
	}
	if sa.jobIDs {
		// job_ids maps each resource of the request to its own job (the cluster actions).
		jobs := map[string]string{}
		for _, id := range requestIDs(sa, r.params) {
			jobs[id] = a.newJob(r, []string{id}).id
		}
		res["job_ids"] = jobs
	}
	nList := 0
	for _, ref := range refs {
		if ref.list {
			nList++
		}
	}
	i := 0
	for _, ref := range refs {
		if err := a.apply(r, ref, verb, j, i, nList); err != nil {
			return nil, err
		}
		if ref.list {
			i++
		}
	}
	kinds := storeKinds()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		name := api.WireName(fd)
		if k := kindOfObjects(kinds, fd); k != nil && isCreateVerb(verb) {
			objs, err := a.createObjects(r, sa, k, j, fd.Message(), res)
			if err != nil {
				return nil, err
			}
			res[name] = objs
			continue
		}
		if fd.Kind() != protoreflect.StringKind || name == "job_id" || name == "job_ids" {
			continue
		}
		if echo := echoed(r, fd); len(echo) > 0 {
			res[name] = oneOrList(fd, echo)
			continue
		}
		if !idAnswerField(fd, verb) {
			continue
		}
		var created []string
		if k := kindOfIDField(kinds, fd); k != nil && isCreateVerb(verb) {
			n, err := createCount(r, sa, fd)
			if err != nil {
				return nil, err
			}
			if created, err = a.create(r, k, j, n, res); err != nil {
				return nil, err
			}
		} else if name == "zone_id" {
			created = []string{a.createZone(r)}
		} else if name == "vxnet_id" {
			created = []string{vxnet0} // the base network every account has
		} else {
			created = []string{a.newID(idPrefix(name))}
		}
		if j != nil {
			j.resourceIDs = append(j.resourceIDs, created...)
		}
		res[name] = oneOrList(fd, created)
	}
	return res, nil
}

// createCount is how many items a create action makes for the answer field fd (nil: a list of
// objects): its count parameter when it takes one, else node_count for a list of ids, else 1.
func createCount(r *request, sa *specAction, fd protoreflect.FieldDescriptor) (int, *apiError) {
	switch {
	case fd != nil && !fd.IsList():
		return 1, nil
	case api.FieldByWireName(sa.in, "count") != nil:
		return r.count()
	}
	if c, _ := r.integer("node_count", 1); fd != nil && c > 1 && c <= maxCount {
		return c, nil
	}
	return 1, nil
}

// validKinds runs the valid hook of every stored kind the action names (an id parameter) or
// creates (an id of its answer).
func validKinds(r *request, sa *specAction) *apiError {
	kinds, seen := storeKinds(), map[*storeKind]bool{}
	for _, md := range []protoreflect.MessageDescriptor{sa.in, sa.out} {
		for i := 0; i < md.Fields().Len(); i++ {
			fd := md.Fields().Get(i)
			k := kindOfIDField(kinds, fd)
			if k == nil && md == sa.in {
				k = kinds[api.WireName(fd)]
			}
			if k == nil && md == sa.out {
				k = kindOfObjects(kinds, fd)
			}
			if k == nil || seen[k] || k.row.valid == nil {
				continue
			}
			seen[k] = true
			if err := k.row.valid(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// kindOfObjects returns the stored kind of an answer field that is a list of objects naming items of
// the kind by <kind>_id (nics of CreateNics: nic_id and private_ip), or nil.
func kindOfObjects(kinds map[string]*storeKind, fd protoreflect.FieldDescriptor) *storeKind {
	if !fd.IsList() || fd.Kind() != protoreflect.MessageKind {
		return nil
	}
	fields := fd.Message().Fields()
	for i := 0; i < fields.Len(); i++ {
		if k := kindOfIDField(kinds, fields.Get(i)); k != nil && !fields.Get(i).IsList() {
			return k
		}
	}
	return nil
}

// createObjects creates the items of a list of objects of kind k (count of them when the action
// takes a count) and answers each as the object md: the item's fields of the same names.
func (a *account) createObjects(r *request, sa *specAction, k *storeKind, j *job, md protoreflect.MessageDescriptor, res result) ([]any, *apiError) {
	n, err := createCount(r, sa, nil)
	if err != nil {
		return nil, err
	}
	ids, err := a.create(r, k, j, n, res)
	if err != nil {
		return nil, err
	}
	if j != nil {
		j.resourceIDs = append(j.resourceIDs, ids...)
	}
	out := make([]any, len(ids))
	for i, id := range ids {
		item, obj := a.renderStored(a.storeOf(k)[id]), map[string]any{}
		for f := 0; f < md.Fields().Len(); f++ {
			name := api.WireName(md.Fields().Get(f))
			if v, ok := item.get(name); ok {
				obj[name] = v
			}
		}
		out[i] = obj
	}
	return out, nil
}

// idAnswerField reports whether an answer field that repeats no request parameter holds ids: the
// ids of a stored kind, a string named *_id, a list named *_ids, or any list of strings of an action
// that creates (vxnet_subnets of GetResourceLimit is no id list).
func idAnswerField(fd protoreflect.FieldDescriptor, verb string) bool {
	name := api.WireName(fd)
	if kindOfIDField(storeKinds(), fd) != nil {
		return true
	}
	if !fd.IsList() {
		return strings.HasSuffix(name, "_id")
	}
	return strings.HasSuffix(name, "_ids") || isCreateVerb(verb)
}

// echoed returns the request ids an answer field repeats: a parameter of the same name (a list
// parameter for a list field), or the field's name without _id (router_id ← router), or the plural
// of the field's name without _ids (cache_ids ← caches).
func echoed(r *request, fd protoreflect.FieldDescriptor) []string {
	name := api.WireName(fd)
	if fd.IsList() {
		cands := []string{name}
		if base, ok := strings.CutSuffix(name, "_ids"); ok {
			cands = append(cands, base+"s", base+"es", strings.TrimSuffix(base, "y")+"ies")
		}
		for _, c := range cands {
			if l := r.list(c); len(l) > 0 {
				return l
			}
		}
		return nil
	}
	for _, c := range []string{name, strings.TrimSuffix(name, "_id")} {
		if v := strings.TrimSpace(r.params[c]); v != "" && c != "zone" {
			return []string{v}
		}
	}
	return nil
}

// idPrefix is the prefix of a fresh id for an answer field: the initials of its words without
// id/ids/new ("app" for app_id, "n" for node_ids).
func idPrefix(name string) string {
	p := ""
	for _, w := range strings.Split(name, "_") {
		if w != "" && w != "id" && w != "ids" && w != "new" {
			p += w[:1]
		}
	}
	if p == "" {
		p = "x"
	}
	return p
}

func oneOrList(fd protoreflect.FieldDescriptor, ids []string) any {
	if fd.IsList() {
		return ids
	}
	return ids[0]
}

// storedKindNames returns the names of the kinds of the generic store, sorted.
func storedKindNames() []string {
	var out []string
	for name := range storeKinds() {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
