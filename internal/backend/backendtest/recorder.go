// Package backendtest helps test code that uses package backend: [Recorder] is a backend.Observer
// that counts what a Client reports, so tests can assert on calls, attempts, retries and ret_codes
// without a metrics registry.
package backendtest

import (
	"maps"
	"slices"
	"sync"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/callclass"
)

// Counts are what a Recorder saw of one action (or of all).
type Counts struct {
	// Calls counts finished calls (coalesced and refused ones included).
	Calls int64
	// Attempts counts upstream attempts; Retries those after the first of a call.
	Attempts, Retries int64
	// Coalesced counts calls that shared another call's upstream request.
	Coalesced int64
	// Refused counts requests the quota budget refused.
	Refused int64
	// RetCodes counts QingCloud answers by ret_code (0 = success).
	RetCodes map[int]int64
	// TransportFailures counts attempts without a usable QingCloud answer.
	TransportFailures int64
	// HTTPStatuses counts attempts by the HTTP status of their answer (0: none came).
	HTTPStatuses map[int]int64
}

func (c *Counts) add(o *Counts) {
	c.Calls += o.Calls
	c.Attempts += o.Attempts
	c.Retries += o.Retries
	c.Coalesced += o.Coalesced
	c.Refused += o.Refused
	c.TransportFailures += o.TransportFailures
	for k, v := range o.RetCodes {
		c.RetCodes[k] += v
	}
	for k, v := range o.HTTPStatuses {
		c.HTTPStatuses[k] += v
	}
}

func newCounts() *Counts { return &Counts{RetCodes: map[int]int64{}, HTTPStatuses: map[int]int64{}} }

// Recorder is a backend.Observer that counts per action. The zero value is ready; it is safe for
// concurrent use.
type Recorder struct {
	mu       sync.Mutex
	actions  map[string]*Counts
	attempts []backend.Attempt
}

var _ backend.Observer = (*Recorder)(nil)

func (r *Recorder) with(action string, f func(*Counts)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.actions == nil {
		r.actions = map[string]*Counts{}
	}
	c := r.actions[action]
	if c == nil {
		c = newCounts()
		r.actions[action] = c
	}
	f(c)
}

// ObserveCall implements backend.Observer.
func (r *Recorder) ObserveCall(action string, _ callclass.Class, shared bool) {
	r.with(action, func(c *Counts) {
		c.Calls++
		if shared {
			c.Coalesced++
		}
	})
}

// ObserveRefusal implements backend.Observer.
func (r *Recorder) ObserveRefusal(action string, _ callclass.Class) {
	r.with(action, func(c *Counts) { c.Refused++ })
}

// ObserveAttempt implements backend.Observer.
func (r *Recorder) ObserveAttempt(a backend.Attempt) {
	r.with(a.Action, func(c *Counts) {
		c.Attempts++
		if a.Retry {
			c.Retries++
		}
		switch a.Outcome {
		case backend.OutcomeOK, backend.OutcomeAnswer:
			c.RetCodes[a.RetCode]++
		case backend.OutcomeTransportFailure:
			c.TransportFailures++
		}
		c.HTTPStatuses[a.HTTPStatus]++
	})
	r.mu.Lock()
	r.attempts = append(r.attempts, a)
	r.mu.Unlock()
}

// Action returns a copy of the counts of one action (zero counts when it was never seen).
func (r *Recorder) Action(action string) Counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := newCounts()
	if c := r.actions[action]; c != nil {
		out.add(c)
	}
	return *out
}

// Total returns the counts of every action summed.
func (r *Recorder) Total() Counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := newCounts()
	for _, c := range r.actions {
		out.add(c)
	}
	return *out
}

// Actions returns the names of the actions seen, sorted.
func (r *Recorder) Actions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.actions))
}

// Attempts returns every attempt reported, in order.
func (r *Recorder) Attempts() []backend.Attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]backend.Attempt(nil), r.attempts...)
}
