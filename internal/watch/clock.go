package watch

import "time"

// Clock is the time source of a Hub's pollers: when rounds start and how long they wait, the times
// recorded for batches, and the next poll time of a PollNotice. Options.Clock nil means the real
// clock; tests that cannot run in a testing/synctest bubble (real network I/O) pass a fake one.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a Timer that sends the time on its channel once d has passed.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer of a Clock with the semantics of *time.Timer (Go 1.23 and later: Stop
// and Reset discard a time not yet received).
type Timer interface {
	// C returns the channel the time is sent on.
	C() <-chan time.Time
	// Stop prevents the timer from firing; false when it already fired or was stopped.
	Stop() bool
	// Reset changes the timer to fire after d; false when it had already fired or was stopped.
	Reset(d time.Duration) bool
}

// realClock is the Clock of the time package.
type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }
