package emulator

import (
	"sort"
	"sync"
)

// Stats are counters for reliability tests. Requests whose access key could not be
// authenticated are counted under the key "".
type Stats struct {
	// Requests is the number of API requests received (all keys, all actions).
	Requests int64 `json:"requests"`
	// Actions aggregates ActionStats over all keys.
	Actions map[string]*ActionStats `json:"actions"`
	// Keys holds the counters and resource counts per access key id.
	Keys map[string]*KeyStats `json:"keys"`
}

// KeyStats are the counters of one access key.
type KeyStats struct {
	Requests int64                   `json:"requests"`
	Actions  map[string]*ActionStats `json:"actions"`
	// Resources counts live (not terminated, deleted, released or ceased) resources by type:
	// "instance", "volume", "eip", "vxnet", "security_group", "keypair", "snapshot", "image",
	// "tag", "router", "loadbalancer". Empty for unauthenticated requests.
	Resources map[string]int `json:"resources,omitempty"`
	// Jobs counts jobs by current status.
	Jobs map[string]int `json:"jobs,omitempty"`
}

// ActionStats are the counters of one action.
type ActionStats struct {
	// Requests received.
	Requests int64 `json:"requests"`
	// RetCodes counts JSON answers by ret_code (0 for success).
	RetCodes map[int]int64 `json:"ret_codes"`
	// Faults counts injected faults by kind ("ret_code_5100", "http_502", "conn_reset",
	// "truncated_body", "latency", ...).
	Faults map[string]int64 `json:"faults,omitempty"`
}

type statsCollector struct {
	mu   sync.Mutex
	s    Stats
	keys map[string]*KeyStats
}

func newStatsCollector() *statsCollector {
	c := &statsCollector{}
	c.reset()
	return c
}

func (c *statsCollector) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s = Stats{Actions: map[string]*ActionStats{}, Keys: map[string]*KeyStats{}}
}

func (c *statsCollector) entries(key, action string) (*KeyStats, *ActionStats, *ActionStats) {
	ks := c.s.Keys[key]
	if ks == nil {
		ks = &KeyStats{Actions: map[string]*ActionStats{}}
		c.s.Keys[key] = ks
	}
	get := func(m map[string]*ActionStats) *ActionStats {
		as := m[action]
		if as == nil {
			as = &ActionStats{RetCodes: map[int]int64{}}
			m[action] = as
		}
		return as
	}
	return ks, get(ks.Actions), get(c.s.Actions)
}

// maxActionName bounds the length of an action name kept in stats (garbage actions are grouped).
const maxActionName = 64

func statsAction(action string) string {
	if len(action) > maxActionName {
		return "(invalid)"
	}
	return action
}

func (c *statsCollector) request(key, action string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ks, a1, a2 := c.entries(key, statsAction(action))
	c.s.Requests++
	ks.Requests++
	a1.Requests++
	a2.Requests++
}

func (c *statsCollector) retCode(key, action string, code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, a1, a2 := c.entries(key, statsAction(action))
	a1.RetCodes[code]++
	a2.RetCodes[code]++
}

func (c *statsCollector) fault(key, action, kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, a1, a2 := c.entries(key, statsAction(action))
	for _, a := range []*ActionStats{a1, a2} {
		if a.Faults == nil {
			a.Faults = map[string]int64{}
		}
		a.Faults[kind]++
	}
}

func (a *ActionStats) clone() *ActionStats {
	out := &ActionStats{Requests: a.Requests, RetCodes: make(map[int]int64, len(a.RetCodes))}
	for k, v := range a.RetCodes {
		out.RetCodes[k] = v
	}
	if a.Faults != nil {
		out.Faults = make(map[string]int64, len(a.Faults))
		for k, v := range a.Faults {
			out.Faults[k] = v
		}
	}
	return out
}

func cloneActions(m map[string]*ActionStats) map[string]*ActionStats {
	out := make(map[string]*ActionStats, len(m))
	for k, v := range m {
		out[k] = v.clone()
	}
	return out
}

// Stats returns a snapshot of the counters, with the current resource and job counts of every
// account.
func (e *Emulator) Stats() Stats {
	e.stats.mu.Lock()
	out := Stats{Requests: e.stats.s.Requests, Actions: cloneActions(e.stats.s.Actions), Keys: map[string]*KeyStats{}}
	for k, ks := range e.stats.s.Keys {
		out.Keys[k] = &KeyStats{Requests: ks.Requests, Actions: cloneActions(ks.Actions)}
	}
	e.stats.mu.Unlock()

	e.accountsMu.RLock()
	ids := make([]string, 0, len(e.accounts))
	for id := range e.accounts {
		ids = append(ids, id)
	}
	e.accountsMu.RUnlock()
	sort.Strings(ids)
	for _, id := range ids {
		a := e.account(id)
		if a == nil {
			continue
		}
		ks := out.Keys[id]
		if ks == nil {
			ks = &KeyStats{Actions: map[string]*ActionStats{}}
			out.Keys[id] = ks
		}
		ks.Resources, ks.Jobs = a.counts()
	}
	return out
}

// counts returns the live resources by type and the jobs by status.
func (a *account) counts() (map[string]int, map[string]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.e.now()
	a.settle(t)
	res := map[string]int{}
	add := func(kind string, b *base) {
		if !terminal(b.status) {
			res[kind]++
		}
	}
	for _, v := range a.instances {
		add("instance", &v.base)
	}
	for _, v := range a.volumes {
		add("volume", &v.base)
	}
	for _, v := range a.eips {
		add("eip", &v.base)
	}
	for _, v := range a.vxnets {
		add("vxnet", &v.base)
	}
	for _, v := range a.sgs {
		add("security_group", &v.base)
	}
	for _, v := range a.keypairs {
		add("keypair", &v.base)
	}
	for _, v := range a.snapshots {
		add("snapshot", &v.base)
	}
	for _, v := range a.images {
		add("image", &v.base)
	}
	for _, v := range a.tags {
		add("tag", &v.base)
	}
	for _, v := range a.routers {
		add("router", &v.base)
	}
	for _, v := range a.lbs {
		add("loadbalancer", &v.base)
	}
	jobs := map[string]int{}
	for _, j := range a.jobOrder {
		st, _ := j.status(t)
		jobs[st]++
	}
	return res, jobs
}
