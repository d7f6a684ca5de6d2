package backend

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
)

// Retry is what the retry policy does after a failed attempt.
type Retry int

const (
	// NoRetry returns the error to the caller.
	NoRetry Retry = iota
	// Backoff sends the request again after a jittered exponential backoff, re-signed, while
	// Config.MaxAttempts and the call's deadline allow (it never sleeps past the deadline).
	Backoff
	// OnceNow sends the request again at once, re-signed with a fresh time_stamp, at most once per call.
	OnceNow
)

// String returns the policy table's words for r.
func (r Retry) String() string {
	switch r {
	case Backoff:
		return "retry with backoff"
	case OnceNow:
		return "retry once, at once"
	}
	return "no retry"
}

// Rule is one row of the retry policy: what came of an attempt, and what happens next for read-only
// actions ([api.ReadOnly]: the read_only flag of the RPC's (qingcloud.iaas.v1.action) option; for
// actions outside the typed set, names starting with Describe or Get) and for actions that change
// something.
type Rule struct {
	// Outcome says what came of the attempt.
	Outcome string
	// Read is what happens for a read-only action.
	Read Retry
	// Mutation is what happens for an action that changes something.
	Mutation Retry
	// Why justifies the row.
	Why string

	match func(outcome) bool // nil: decided before the attempt, not by the policy loop
}

// policy is THE retry policy: the first row whose match accepts an outcome decides. docs/upstream.md
// shows the same table (a test keeps them equal).
var policy = []Rule{
	{
		Outcome: "the server's quota budget for the access key is spent (checked before every attempt)",
		Read:    NoRetry, Mutation: NoRetry,
		Why: "nothing was sent; RESOURCE_EXHAUSTED with RetryInfo goes back at once",
	},
	{
		Outcome: "a GET whose signed URL would be longer than 16 KiB (MaxURLBytes; checked before the first attempt)",
		Read:    NoRetry, Mutation: NoRetry,
		Why: "nothing was sent: INVALID_ARGUMENT says to split the call",
	},
	{
		Outcome: "the caller canceled, or the call's deadline passed",
		Read:    NoRetry, Mutation: NoRetry,
		Why:   "nobody waits for the answer",
		match: func(o outcome) bool { return o.kind == outcomeContext },
	},
	{
		Outcome: "the request could not be built or signed",
		Read:    NoRetry, Mutation: NoRetry,
		Why:   "repeating changes nothing",
		match: func(o outcome) bool { return o.kind == outcomeLocal },
	},
	{
		Outcome: "ret_code 1300 (request expired: time_stamp more than 60 s off)",
		Read:    OnceNow, Mutation: OnceNow,
		Why:   "QingCloud refused the request before acting; a fresh signature may pass, a second one would not",
		match: func(o outcome) bool { return o.kind == outcomeAnswer && o.retCode == 1300 },
	},
	{
		Outcome: "ret_code 5000, 5100, 5300 (internal error, busy, upgrading)",
		Read:    Backoff, Mutation: NoRetry,
		Why: "transient; a mutation answered 5000 or 5100 may have been applied, and its ErrorInfo says so (may_have_applied=true)",
		match: func(o outcome) bool {
			return o.kind == outcomeAnswer && (o.retCode == 5000 || o.retCode == 5100 || o.retCode == 5300)
		},
	},
	{
		Outcome: "ret_code 1400 saying the resource is busy (please try later, lease info not ready, is [<transition>])",
		Read:    Backoff, Mutation: NoRetry,
		Why: "transient; a mutation goes back as UNAVAILABLE with RetryInfo, for the caller to repeat",
		match: func(o outcome) bool {
			return o.kind == outcomeAnswer && o.retCode == 1400 && qcerr.Retryable(o.retCode, o.message)
		},
	},
	{
		Outcome: "ret_code 2500 (API request quota or resource quota)",
		Read:    NoRetry, Mutation: NoRetry,
		Why:   "never retried quickly: RESOURCE_EXHAUSTED with RetryInfo (1 min for the request quota) goes back at once",
		match: func(o outcome) bool { return o.kind == outcomeAnswer && o.retCode == 2500 },
	},
	{
		Outcome: "any other ret_code",
		Read:    NoRetry, Mutation: NoRetry,
		Why:   "a definite answer",
		match: func(o outcome) bool { return o.kind == outcomeAnswer },
	},
	{
		Outcome: "HTTP 4xx other than 429 (QingCloud's front end refused the request: too large, malformed, wrong path)",
		Read:    NoRetry, Mutation: NoRetry,
		Why:   "refused before the API saw it, so not applied (may_have_applied=false), and refused the same way again: INVALID_ARGUMENT when too large, else FAILED_PRECONDITION",
		match: func(o outcome) bool { return o.kind == outcomeRefused },
	},
	{
		Outcome: "no answer, and the request provably never left (dial, DNS or TLS failed): may_have_applied=false",
		Read:    Backoff, Mutation: Backoff,
		Why:   "QingCloud never saw it, so repeating cannot apply anything twice",
		match: func(o outcome) bool { return o.kind == outcomeTransport && !o.wrote },
	},
	{
		Outcome: "no usable answer after the request was sent (connection reset or closed, attempt timeout, another HTTP status not 200, non-JSON or truncated body): may_have_applied=true",
		Read:    Backoff, Mutation: NoRetry,
		Why:   "a mutation may have been applied: UNAVAILABLE whose ErrorInfo says so (may_have_applied=true), never repeated by us",
		match: func(o outcome) bool { return o.kind == outcomeTransport },
	},
}

// Policy returns the retry policy, one Rule per row; the first row that fits an outcome decides.
func Policy() []Rule { return slices.Clone(policy) }

// decide returns what the policy does after outcome o.
func decide(o outcome, readOnly bool) Retry {
	for _, r := range policy {
		if r.match != nil && r.match(o) {
			if readOnly {
				return r.Read
			}
			return r.Mutation
		}
	}
	return NoRetry
}

// outcomeKind classifies an attempt.
type outcomeKind int

const (
	outcomeOK        outcomeKind = iota // ret_code 0
	outcomeAnswer                       // a QingCloud error answer
	outcomeTransport                    // no usable answer
	outcomeContext                      // the caller's context ended
	outcomeLocal                        // the request could not be built
	outcomeRefused                      // an HTTP 4xx other than 429: refused before the API saw it
)

// outcome is what came of one attempt.
type outcome struct {
	kind    outcomeKind
	retCode int    // outcomeAnswer
	message string // outcomeAnswer: the upstream message
	wrote   bool   // outcomeTransport, outcomeContext: the request may have reached QingCloud
	// httpStatus is the status of the HTTP answer, 0 when none came (for metrics).
	httpStatus int
}

// minAttemptTime is the least time left before the deadline for which a retry is still started.
const minAttemptTime = 10 * time.Millisecond

// backoff returns the jittered wait before retry n (1 for the first retry): the exponential step
// base·2^(n-1), capped at max, of which a random half is waited on top of the other half ("equal
// jitter": concurrent callers spread out, and no wait collapses to nothing).
func (c *Client) backoff(n int) time.Duration {
	step := c.retryMax
	if n-1 < 30 {
		step = min(c.retryBase<<(n-1), c.retryMax)
	}
	half := step / 2
	return half + rand.N(step-half+1)
}

// wait sleeps d unless the call's deadline (ctx's, or callDL when not zero) would pass first (or
// leave too little for an attempt) or ctx ends; it reports whether the retry should go ahead.
func wait(ctx context.Context, d time.Duration, callDL time.Time) bool {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl)-d < minAttemptTime {
		return false
	}
	if !callDL.IsZero() && time.Until(callDL)-d < minAttemptTime {
		return false
	}
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
