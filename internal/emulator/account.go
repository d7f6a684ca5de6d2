package emulator

import (
	"container/heap"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
)

// account is the isolated state of one access key. Every field is guarded by mu.
type account struct {
	e     *Emulator
	mu    sync.Mutex
	keyID string
	owner string
	ids   map[string]struct{}

	events   eventHeap
	eventSeq uint64

	jobs     map[string]*job
	jobOrder []*job

	nicReady   map[*iaasv1.NicVxnet]time.Time // an instance NIC -> when its private IP shows
	joins      map[string]*routerJoin         // vxnet id -> its join to a router
	tagLinks   map[string][]tagLink           // tag id -> attached resources, in attach order
	store      map[string]map[string]*stored  // generic store: kind -> id -> item
	defaultSGs map[string]string              // zone -> default security group id
	ipSeq      int                            // private IPs handed out in vxnet-0
	eipSeq     int
}

func newAccount(e *Emulator, keyID string, now time.Time) *account {
	a := &account{
		e:          e,
		keyID:      keyID,
		ids:        make(map[string]struct{}),
		jobs:       make(map[string]*job),
		nicReady:   make(map[*iaasv1.NicVxnet]time.Time),
		joins:      make(map[string]*routerJoin),
		tagLinks:   make(map[string][]tagLink),
		store:      make(map[string]map[string]*stored),
		defaultSGs: make(map[string]string),
	}
	a.owner = a.newID("usr")
	a.seed(now)
	return a
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// randIntN is the randomness of ids and MAC addresses: math/rand/v2's, a variable so that a test can
// make the emulator's answers reproducible.
var randIntN = rand.IntN

// newID returns a fresh id: prefix, '-', 8 characters of [a-z0-9].
func (a *account) newID(prefix string) string {
	for {
		b := make([]byte, len(prefix)+9)
		copy(b, prefix)
		b[len(prefix)] = '-'
		for i := len(prefix) + 1; i < len(b); i++ {
			b[i] = idAlphabet[randIntN(len(idAlphabet))]
		}
		id := string(b)
		if _, taken := a.ids[id]; !taken && id != vxnet0 {
			a.ids[id] = struct{}{}
			return id
		}
	}
}

// createZone is the zone a resource created by r lives in: the zone parameter, or the first zone
// of a region alias.
func (a *account) createZone(r *request) string {
	if len(r.zones) > 0 {
		return r.zones[0]
	}
	return r.zone
}

// event is a deferred state change, applied by settle once the clock has passed at.
type event struct {
	at  time.Time
	seq uint64
	fn  func()
}

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return x
}

// at schedules fn for when the clock reaches t.
func (a *account) at(t time.Time, fn func()) {
	a.eventSeq++
	heap.Push(&a.events, &event{at: t, seq: a.eventSeq, fn: fn})
}

// settle applies every deferred change due at now, in time order. It is called under mu before
// each request is handled, so every answer reflects the clock.
func (a *account) settle(now time.Time) {
	for len(a.events) > 0 && !a.events[0].at.After(now) {
		ev := heap.Pop(&a.events).(*event)
		ev.fn()
	}
}

// base holds the fields every stateful resource shares.
type base struct {
	kind        string // "instance", "volume", ... (for messages)
	id          string
	name        string
	description string
	zone        string
	status      string
	transition  string // visible transition_status
	busy        string // label of the running operation, "" when idle
	created     time.Time
	statusTime  time.Time
	gone        bool // terminal state reached (terminated, deleted, released, ceased)
}

// idle checks that b is not in the middle of an operation.
func (b *base) idle() *apiError {
	if b.busy != "" {
		return errDenied("%s [%s] is [%s], please try later", b.kind, b.id, b.busy)
	}
	return nil
}

// need checks that b is idle and in one of the allowed statuses; verb names the refused
// operation in the message ("stopped" in "can not be stopped").
func (b *base) need(verb string, allowed ...string) *apiError {
	if err := b.idle(); err != nil {
		return err
	}
	for _, s := range allowed {
		if b.status == s {
			return nil
		}
	}
	if len(allowed) == 1 {
		return errDenied("%s [%s] is not %s, can not be %s", b.kind, b.id, allowed[0], verb)
	}
	return errDenied("%s [%s] is [%s], can not be %s", b.kind, b.id, b.status, verb)
}

// alive refuses operations on resources in a terminal status.
func (b *base) alive() *apiError {
	if terminal(b.status) {
		return errDenied("%s [%s] has been %s", b.kind, b.id, b.status)
	}
	return nil
}

// modify applies the name parameter and description, when present.
func (b *base) modify(r *request, nameParam string) {
	if r.has(nameParam) {
		b.name = strings.TrimSpace(r.str(nameParam))
	}
	if r.has("description") {
		b.description = strings.TrimSpace(r.str("description"))
	}
}

// terminal reports whether status is a terminal (deleted) status.
func terminal(status string) bool {
	switch status {
	case "terminated", "deleted", "released", "ceased":
		return true
	}
	return false
}

// op describes an operation that runs with a job.
type op struct {
	transition string // visible transition_status while running (may be "")
	label      string // busy label for messages; defaults to transition
	to         string // status on success; "" keeps the status
	failTo     string // status on failure; "" restores the status before the operation
	ok         func() // runs on success, after the status change
	undo       func() // runs on failure, after the status change
}

// begin starts o on b as part of job j (b is the i-th of its n resources). remove deletes the
// resource from its map; it runs Retention after the resource reaches a terminal status.
func (a *account) begin(b *base, j *job, i, n int, o op, remove func()) {
	prev := b.status
	b.transition = o.transition
	b.busy = o.label
	if b.busy == "" {
		b.busy = o.transition
	}
	if b.busy == "" {
		b.busy = "updating"
	}
	fails := j.fails(i, n)
	a.at(j.end, func() {
		b.transition, b.busy = "", ""
		to, fn := o.to, o.ok
		if fails {
			to, fn = o.failTo, o.undo
			if to == "" {
				to = prev
			}
		}
		if to != "" && to != b.status {
			b.status = to
			b.statusTime = j.end
		}
		if fn != nil {
			fn()
		}
		if terminal(b.status) && !b.gone {
			a.retire(b, j.end, remove)
		}
	})
}

// retire marks b gone at t and schedules its removal Retention later.
func (a *account) retire(b *base, t time.Time, remove func()) {
	b.gone = true
	if remove != nil {
		a.at(t.Add(a.e.retention), remove)
	}
}

// newBase returns the base of a resource created by r.
func (a *account) newBase(r *request, kind, prefix, name, status string) base {
	return base{
		kind: kind, id: a.newID(prefix), name: name, zone: a.createZone(r),
		status: status, created: r.now, statusTime: r.now,
	}
}

// lookup finds ids in m within the request's zones; the first unknown id is 2100. Gone
// resources are found too (their status makes the operation fail with 1400).
func lookup(r *request, m map[string]*stored, ids []string) ([]*stored, *apiError) {
	out := make([]*stored, 0, len(ids))
	for _, id := range ids {
		s := m[id]
		if s == nil || !r.inZone(s.zone) {
			return nil, errNotFound(id)
		}
		out = append(out, s)
	}
	return out, nil
}

// lookupOne finds one id.
func lookupOne(r *request, m map[string]*stored, id string) (*stored, *apiError) {
	l, err := lookup(r, m, []string{id})
	if err != nil {
		return nil, err
	}
	return l[0], nil
}

// remover returns a func that deletes s from the store and drops its tags, for a resource whose
// terminal state has outlived the retention period.
func (a *account) remover(s *stored) func() {
	return func() {
		delete(a.storeOf(s.kind), s.id)
		a.dropTags(s.id)
	}
}

// jobOnEach is the shape of the delayed actions on a list of resources of one kind: every id of the
// list parameter param must exist in m (else 2100), be in a state allowed for verb (else 1400) and
// pass check (when not nil); only then does one job move each resource through the operation o
// gives it, so a refused request changes nothing.
func jobOnEach(a *account, r *request, param string, m map[string]*stored,
	verb string, allowed []string, check func(*stored) *apiError, o func(*stored) op) (result, *apiError) {
	idl, err := r.requiredList(param)
	if err != nil {
		return nil, err
	}
	items, err := lookup(r, m, idl)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		if err := it.need(verb, allowed...); err != nil {
			return nil, err
		}
		if check != nil {
			if err := check(it); err != nil {
				return nil, err
			}
		}
	}
	j := a.newJob(r, idl)
	for i, it := range items {
		a.begin(&it.base, j, i, len(items), o(it), a.remover(it))
	}
	return result{"job_id": j.id}, nil
}

// filterSorted returns the items of m accepted by keep, newest first.
func filterSorted(m map[string]*stored, keep func(*stored) bool) []*stored {
	var items []*stored
	for _, s := range m {
		if keep(s) {
			items = append(items, s)
		}
	}
	// sortByCreated's order, without its closures; the ids of m's items differ, so the order is total.
	slices.SortFunc(items, func(x, y *stored) int {
		if c := y.created.Compare(x.created); c != 0 {
			return c
		}
		return strings.Compare(x.id, y.id)
	})
	return items
}

// describeFilter is the common filter of Describe actions: zone (a resource without one, such as a
// system image, is in every zone), ids, status.N, search_word, tags.N.
func (a *account) describeFilter(r *request, idsParam string) func(b *base) bool {
	// A filter the action's request does not declare is an unknown parameter, which is ignored
	// (DescribeLoadBalancerBackends has no status.N, tags.N or search_word).
	declared := func(name string) bool {
		sa := specActions()[r.action]
		return sa == nil || api.FieldByWireName(sa.in, name) != nil
	}
	idOK := idFilter(r.list(idsParam))
	statusOK := idFilter(nil)
	if declared("status") {
		statusOK = idFilter(r.list("status"))
	}
	var tagIDs []string
	if idsParam != "tags" && declared("tags") { // DescribeTags: tags.N are the ids listed, not a filter by tag
		tagIDs = r.list("tags")
	}
	search := declared("search_word")
	return func(b *base) bool {
		return (b.zone == "" || r.inZone(b.zone)) && idOK(b.id) && statusOK(b.status) &&
			(!search || r.searchMatch(b.id, b.name)) && a.hasAnyTag(b.id, tagIDs)
	}
}
