package emulator

import (
	"maps"
	"sync"
)

// Counters count API requests by action.
type Counters struct {
	// Requests counts requests received, by action.
	Requests map[string]int64 `json:"requests"`
	// RetCodes counts JSON answers by action and ret_code (0 for success).
	RetCodes map[string]map[int]int64 `json:"ret_codes"`
	// Faults counts injected faults by action and kind ("ret_code_5100", "ret_code_5000",
	// "ret_code_2500", "http_502", "http_503", "conn_reset", "truncated_body", "latency").
	Faults map[string]map[string]int64 `json:"faults"`
}

func newCounters() Counters {
	return Counters{Requests: map[string]int64{}, RetCodes: map[string]map[int]int64{}, Faults: map[string]map[string]int64{}}
}

func (c Counters) clone() Counters {
	out := newCounters()
	for k, v := range c.Requests {
		out.Requests[k] = v
	}
	for k, m := range c.RetCodes {
		out.RetCodes[k] = maps.Clone(m)
	}
	for k, m := range c.Faults {
		out.Faults[k] = maps.Clone(m)
	}
	return out
}

// Stats are counters for reliability tests. Requests whose access key could not be
// authenticated are counted under the key "".
type Stats struct {
	// TotalRequests is the number of API requests received.
	TotalRequests int64 `json:"total_requests"`
	// Counters aggregate all keys.
	Counters
	// Keys holds the counters, resource counts and job counts per access key id.
	Keys map[string]*KeyStats `json:"keys"`
}

// KeyStats are the counters of one access key.
type KeyStats struct {
	Counters
	// Resources counts live (not terminated, deleted, released or ceased) resources by type:
	// "instance", "volume", "eip", "vxnet" (without vxnet-0), "security_group", "keypair",
	// "snapshot", "image" (private), "tag", "router", "loadbalancer".
	Resources map[string]int `json:"resources"`
	// Jobs counts jobs by current status.
	Jobs map[string]int `json:"jobs"`
}

type statsCollector struct {
	mu    sync.Mutex
	total int64
	all   Counters
	keys  map[string]Counters
}

func newStatsCollector() *statsCollector {
	c := &statsCollector{}
	c.reset()
	return c
}

func (c *statsCollector) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total, c.all, c.keys = 0, newCounters(), map[string]Counters{}
}

// maxActionName bounds the length of an action name kept in stats (garbage actions are grouped).
const maxActionName = 64

func statsAction(action string) string {
	if len(action) > maxActionName {
		return "(invalid)"
	}
	return action
}

// both returns the aggregate and the per-key counters.
func (c *statsCollector) both(key string) [2]Counters {
	k, ok := c.keys[key]
	if !ok {
		k = newCounters()
		c.keys[key] = k
	}
	return [2]Counters{c.all, k}
}

func (c *statsCollector) request(key, action string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total++
	for _, cs := range c.both(key) {
		cs.Requests[statsAction(action)]++
	}
}

func (c *statsCollector) retCode(key, action string, code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	action = statsAction(action)
	for _, cs := range c.both(key) {
		m := cs.RetCodes[action]
		if m == nil {
			m = map[int]int64{}
			cs.RetCodes[action] = m
		}
		m[code]++
	}
}

func (c *statsCollector) fault(key, action, kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	action = statsAction(action)
	for _, cs := range c.both(key) {
		m := cs.Faults[action]
		if m == nil {
			m = map[string]int64{}
			cs.Faults[action] = m
		}
		m[kind]++
	}
}

// Stats returns a snapshot of the counters, with the current resource and job counts of every
// account.
func (e *Emulator) Stats() Stats {
	e.stats.mu.Lock()
	out := Stats{TotalRequests: e.stats.total, Counters: e.stats.all.clone(), Keys: map[string]*KeyStats{}}
	for k, cs := range e.stats.keys {
		out.Keys[k] = &KeyStats{Counters: cs.clone()}
	}
	e.stats.mu.Unlock()

	for _, id := range e.keyIDsOrder {
		a := e.account(id)
		if a == nil {
			continue
		}
		ks := out.Keys[id]
		if ks == nil {
			ks = &KeyStats{Counters: newCounters()}
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
	for kind, m := range a.store {
		for _, v := range m {
			if v.zone != "" { // not a system item (vxnet-0)
				add(kind, &v.base)
			}
		}
	}
	jobs := map[string]int{}
	for _, j := range a.jobOrder {
		st, _ := j.status(t)
		jobs[st]++
	}
	return res, jobs
}
