package idempotency

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Outcome is the recorded result of the first call with a key: exactly one of Response (a marshaled
// google.protobuf.Any of the response message) and Status (a marshaled google.rpc.Status) is set.
type Outcome struct {
	Response []byte
	Status   []byte
}

// ErrConflict is returned by Store.Begin when the key was first used for another request.
var ErrConflict = errors.New("idempotency key already used for another request")

// ErrFull is returned by Store.Begin when the store holds as many keys as it may.
var ErrFull = errors.New("idempotency store is full")

// Store keeps the outcomes of calls by key. Keys given to a Store are already scoped per tenant.
type Store interface {
	// Begin claims key for a call whose request has fingerprint fp, for at most claimTTL. It returns
	// (nil, nil) when the caller must run the call and then Finish or Abandon; the recorded Outcome
	// when a call with the same fingerprint finished; ErrConflict when the key was used for another
	// fingerprint. While a call with the same key runs, Begin waits for it until ctx ends (then ctx's
	// error). A claim that outlives claimTTL (its server stopped while the call ran) is recorded as
	// interrupted: ABORTED with may_have_applied=true, never run again.
	Begin(ctx context.Context, key, fp string, claimTTL time.Duration) (*Outcome, error)
	// Finish records the outcome of a claimed key, kept for the store's retention.
	Finish(ctx context.Context, key string, o *Outcome) error
	// Abandon frees a claimed key: the call did nothing, and a repeat may run it again.
	Abandon(ctx context.Context, key string) error
}

// Memory is a Store in process memory. Entries expire after Retention; expired entries are swept as
// new keys arrive, and at most MaxKeys live at once.
type Memory struct {
	retention time.Duration
	maxKeys   int
	now       func() time.Time

	mu        sync.Mutex
	entries   map[string]*entry
	lastSweep time.Time
}

// entry is one key: running (done open) or finished (outcome set).
type entry struct {
	fp      string
	done    chan struct{} // closed when finished or abandoned
	outcome *Outcome      // nil while running, or after Abandon
	expires time.Time
}

// MemoryOptions configure a Memory store.
type MemoryOptions struct {
	// Retention is how long a finished outcome is kept. Default DefaultRetention.
	Retention time.Duration
	// MaxKeys bounds the keys held at once; Begin refuses new keys beyond it. Default 100,000.
	MaxKeys int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultRetention is how long outcomes are kept by default: 24 hours, like the IETF draft's examples
// and Stripe.
const DefaultRetention = 24 * time.Hour

// NewMemory returns a Memory store.
func NewMemory(o MemoryOptions) *Memory {
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = 100_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Memory{retention: o.Retention, maxKeys: o.MaxKeys, now: o.Now, entries: map[string]*entry{}}
}

// Begin implements Store.
func (m *Memory) Begin(ctx context.Context, key, fp string, claimTTL time.Duration) (*Outcome, error) {
	for {
		m.mu.Lock()
		now := m.now()
		e := m.entries[key]
		if e != nil && !now.Before(e.expires) {
			if e.outcome == nil {
				// A claim that outlived its TTL: its call never reported back, and may have applied.
				e.outcome = interrupted()
				e.expires = now.Add(m.retention)
				close(e.done)
			} else {
				delete(m.entries, key)
				e = nil
			}
		}
		if e == nil {
			m.sweep(now)
			if len(m.entries) >= m.maxKeys {
				m.mu.Unlock()
				return nil, ErrFull
			}
			m.entries[key] = &entry{fp: fp, done: make(chan struct{}), expires: now.Add(claimTTL)}
			m.mu.Unlock()
			return nil, nil
		}
		if e.fp != fp {
			m.mu.Unlock()
			return nil, ErrConflict
		}
		if e.outcome != nil {
			o := e.outcome
			m.mu.Unlock()
			return o, nil
		}
		done := e.done
		m.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// sweep drops expired finished entries, at most once a minute of the clock. m.mu is held.
func (m *Memory) sweep(now time.Time) {
	if now.Sub(m.lastSweep) < time.Minute && len(m.entries) < m.maxKeys {
		return
	}
	m.lastSweep = now
	for k, e := range m.entries {
		if e.outcome != nil && !now.Before(e.expires) {
			delete(m.entries, k)
		}
	}
}

// Finish implements Store.
func (m *Memory) Finish(_ context.Context, key string, o *Outcome) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[key]
	if e == nil || e.outcome != nil {
		return fmt.Errorf("idempotency: finish %q: the key is not claimed (any more)", key)
	}
	e.outcome = o
	e.expires = m.now().Add(m.retention)
	close(e.done)
	return nil
}

// Abandon implements Store.
func (m *Memory) Abandon(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[key]
	if e == nil || e.outcome != nil {
		return nil
	}
	delete(m.entries, key)
	close(e.done)
	return nil
}

// Len returns the number of keys held (running or finished, expired ones not yet swept included).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}
