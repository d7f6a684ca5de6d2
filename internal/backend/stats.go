package backend

import (
	"maps"
	"sync"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/budget"
)

// maxTrackedActions bounds the actions counted by name (CallService accepts any action name); the
// rest are counted under OtherActions.
const maxTrackedActions = 1024

// OtherActions is the Stats key of actions beyond the first maxTrackedActions seen: the label of
// every action outside the typed set, [api.OtherAction].
const OtherActions = api.OtherAction

// ActionStats are the counters of one action.
type ActionStats struct {
	// Calls counts calls made to the Client (coalesced and refused ones included).
	Calls int64 `json:"calls"`
	// Attempts counts upstream requests sent (or tried: a failed dial counts).
	Attempts int64 `json:"attempts"`
	// Retries counts attempts after the first of a call.
	Retries int64 `json:"retries"`
	// Coalesced counts calls that shared another identical call's upstream request: calls saved.
	Coalesced int64 `json:"coalesced"`
	// Refused counts calls (or retries) the quota budget refused before sending.
	Refused int64 `json:"refused"`
	// RetCodes counts QingCloud answers by ret_code (0 = success).
	RetCodes map[int]int64 `json:"ret_codes"`
	// TransportFailures counts attempts without a usable QingCloud answer.
	TransportFailures int64 `json:"transport_failures"`
}

func (a *ActionStats) add(o ActionStats) {
	a.Calls += o.Calls
	a.Attempts += o.Attempts
	a.Retries += o.Retries
	a.Coalesced += o.Coalesced
	a.Refused += o.Refused
	a.TransportFailures += o.TransportFailures
	for k, v := range o.RetCodes {
		if a.RetCodes == nil {
			a.RetCodes = map[int]int64{}
		}
		a.RetCodes[k] += v
	}
}

// Stats are the Client's counters since it was made, for metrics.
type Stats struct {
	// Total sums every action.
	Total ActionStats `json:"total"`
	// Actions holds the counters per QingCloud action.
	Actions map[string]ActionStats `json:"actions"`
	// Budget is the usage of the quota budget (shared by every Client of the same Budget), with the
	// remaining requests per call class.
	Budget budget.Stats `json:"budget"`
}

// counters collects Stats.
type counters struct {
	mu      sync.Mutex
	actions map[string]*ActionStats
}

// with runs f on the counters of action under the lock.
func (c *counters) with(action string, f func(*ActionStats)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.actions == nil {
		c.actions = map[string]*ActionStats{}
	}
	a := c.actions[action]
	if a == nil {
		if len(c.actions) >= maxTrackedActions {
			action = OtherActions
			a = c.actions[action]
		}
		if a == nil {
			a = &ActionStats{}
			c.actions[action] = a
		}
	}
	f(a)
}

func (c *counters) call(action string)      { c.with(action, func(a *ActionStats) { a.Calls++ }) }
func (c *counters) coalesced(action string) { c.with(action, func(a *ActionStats) { a.Coalesced++ }) }
func (c *counters) refused(action string)   { c.with(action, func(a *ActionStats) { a.Refused++ }) }

// attempt records one upstream attempt (n is 1 for the first of a call) and what came of it.
func (c *counters) attempt(action string, n int, o outcome) {
	c.with(action, func(a *ActionStats) {
		a.Attempts++
		if n > 1 {
			a.Retries++
		}
		switch o.kind {
		case outcomeOK, outcomeAnswer:
			if a.RetCodes == nil {
				a.RetCodes = map[int]int64{}
			}
			a.RetCodes[o.retCode]++
		case outcomeTransport, outcomeRefused:
			a.TransportFailures++
		}
	})
}

// snapshot returns copies of the counters.
func (c *counters) snapshot() (ActionStats, map[string]ActionStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var total ActionStats
	out := make(map[string]ActionStats, len(c.actions))
	for k, a := range c.actions {
		cp := *a
		cp.RetCodes = maps.Clone(a.RetCodes)
		out[k] = cp
		total.add(*a)
	}
	return total, out
}

// Stats returns the Client's counters: calls, attempts, retries, coalesced (saved) calls, budget
// refusals and upstream ret_codes per action and in total, and the quota budget's remaining requests
// per call class.
func (c *Client) Stats() Stats {
	total, actions := c.stats.snapshot()
	return Stats{Total: total, Actions: actions, Budget: c.budget.Stats()}
}
