// Package qcerr turns QingCloud failures into gRPC status errors that follow AIP-193: a canonical code,
// a brief English message that says what happened and what to do, and exactly one
// google.rpc.ErrorInfo (reason, domain, metadata), plus RetryInfo when coming back later helps and a
// QuotaFailure for quota errors.
//
// A QingCloud error answer (HTTP 200 with a non-zero ret_code) becomes [FromRetCode], mapped by one
// table (ret_code → code, retry advice). A failure that is not a QingCloud answer (connection, HTTP
// status, unreadable body) becomes [Transport], always UNAVAILABLE, which says whether the action may
// have been applied. The caller's own cancellation and deadline become [Context]. A request the
// server's own quota budget refused becomes [BudgetExhausted] (RESOURCE_EXHAUSTED with RetryInfo).
//
// Every status error of the service, not only QingCloud's, is made by one builder, [New] (or [Status]),
// which puts the ErrorInfo first; [BadRequest] is the INVALID_ARGUMENT of a request refused before
// any upstream call, with a BadRequest detail naming the fields ([Violation]).
//
// Whether an error may be retried, and by whom, is the backend's retry policy (docs/upstream.md):
// [Retryable] only says whether repeating the same request later may succeed.
package qcerr

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Domain is the ErrorInfo domain of every error this service reports.
const Domain = "qingcloud.com"

// Reasons of the errors that are not QingCloud answers. QingCloud answers use "QINGCLOUD_<ret_code>".
const (
	// ReasonUpstreamUnavailable: QingCloud could not be reached or did not answer usably.
	ReasonUpstreamUnavailable = "UPSTREAM_UNAVAILABLE"
	// ReasonCanceled: the caller canceled the call while QingCloud was being asked.
	ReasonCanceled = "CANCELED"
	// ReasonDeadlineExceeded: the caller's deadline passed while QingCloud was being asked.
	ReasonDeadlineExceeded = "DEADLINE_EXCEEDED"
	// ReasonInvalidRequest: the request cannot be sent as QingCloud parameters.
	ReasonInvalidRequest = "INVALID_REQUEST"
	// ReasonBudgetExhausted: the server's client-side quota budget for the access key is spent, so
	// the request was not sent (it would have earned a ret_code 2500).
	ReasonBudgetExhausted = "QUOTA_BUDGET_EXHAUSTED"
)

// ReasonPrefix starts the ErrorInfo reason of a QingCloud error answer; the ret_code follows.
const ReasonPrefix = "QINGCLOUD_"

// maxMessage bounds the upstream text copied into messages and metadata.
const maxMessage = 512

// retry is the retry advice of an error kind.
type retry struct {
	// retryable: repeating the same request later may succeed (see Retryable).
	retryable bool
	// delay, when set, is sent as RetryInfo.retry_delay.
	delay time.Duration
}

// entry is one row of the ret_code table.
type entry struct {
	code codes.Code
	// what says what went wrong, in a few words.
	what string
	// todo tells the caller what to do.
	todo string
	retry
	// refine, when set, decides the row from the upstream message (1400 and 2500 carry several meanings).
	refine func(msg string) entry
}

// table is the ret_code mapping of qingcloud-protocol.md §6.4, covering every code of §6.1.
var table = map[int]entry{
	1100: {code: codes.InvalidArgument, what: "a parameter is missing or malformed", todo: "fix the request parameters"},
	1101: {code: codes.Unimplemented, what: "the action does not exist", todo: "check the action name"},
	1200: {code: codes.Unauthenticated, what: "authentication failed (unknown access key or bad signature)", todo: "check the access key id and secret configured on the server"},
	1300: {code: codes.Unauthenticated, what: "the request expired", todo: "check the server's clock (time_stamp must be within 60 s of QingCloud's)"},
	1400: refined(denied1400, refine1400),
	1500: {code: codes.FailedPrecondition, what: "user registration failed", todo: "contact QingCloud support"},
	1510: {code: codes.AlreadyExists, what: "the account already exists", todo: "use another account name"},
	1520: {code: codes.InvalidArgument, what: "the account name is invalid", todo: "fix the account name"},
	1600: {code: codes.Unauthenticated, what: "login failed", todo: "check the credentials"},
	1610: {code: codes.Unauthenticated, what: "the user was not found", todo: "check the credentials"},
	1620: {code: codes.Unauthenticated, what: "the password does not match", todo: "check the credentials"},
	1630: {code: codes.FailedPrecondition, what: "resetting the password failed", todo: "try the password reset again"},
	1640: {code: codes.ResourceExhausted, what: "passwords were reset too often", todo: "wait before resetting again", retry: retry{delay: time.Minute}},
	1650: {code: codes.FailedPrecondition, what: "the password reset token is invalid", todo: "request a new password reset"},
	1660: {code: codes.Unauthenticated, what: "the user name or password does not match", todo: "check the credentials"},
	1661: {code: codes.FailedPrecondition, what: "the user has not completed registration", todo: "complete the registration"},
	1662: {code: codes.PermissionDenied, what: "the user is banned", todo: "contact QingCloud support"},
	2000: {code: codes.Unauthenticated, what: "the login session expired", todo: "log in again"},
	2100: {code: codes.NotFound, what: "a resource was not found", todo: "check the resource IDs and the zone"},
	2110: {code: codes.AlreadyExists, what: "the resource already exists", todo: "use the existing resource or another name"},
	2200: {code: codes.FailedPrecondition, what: "leasing the resource failed", todo: "check the account's billing state"},
	2300: {code: codes.FailedPrecondition, what: "ending the resource's lease failed", todo: "check the account's billing state"},
	2400: {code: codes.FailedPrecondition, what: "the account balance is insufficient", todo: "top up the account"},
	2500: refined(quota2500, refine2500),
	3300: {code: codes.Unimplemented, what: "the API module is invalid", todo: "check the endpoint and action"},
	4000: {code: codes.FailedPrecondition, what: "the licence is invalid", todo: "install a valid licence"},
	4001: {code: codes.FailedPrecondition, what: "the licence expired", todo: "renew the licence"},
	4002: {code: codes.FailedPrecondition, what: "the same licence is already installed", todo: "remove the duplicate licence"},
	4003: {code: codes.FailedPrecondition, what: "the licence does not cover more hosts", todo: "extend the licence"},
	4004: {code: codes.FailedPrecondition, what: "loading the licence failed", todo: "reinstall the licence"},
	4005: {code: codes.FailedPrecondition, what: "no licence was found", todo: "install a licence"},
	5000: {code: codes.Internal, what: "QingCloud had an internal error", todo: "retry later; if it persists, contact QingCloud support", retry: retry{retryable: true, delay: time.Second}},
	5100: {code: codes.Unavailable, what: "QingCloud is busy", todo: "retry later", retry: retry{retryable: true, delay: 2 * time.Second}},
	5200: {code: codes.ResourceExhausted, what: "QingCloud lacks capacity for the request", todo: "try later, another zone, or a smaller resource type", retry: retry{delay: time.Minute}},
	5300: {code: codes.Unavailable, what: "QingCloud is being updated", todo: "retry later", retry: retry{retryable: true, delay: 10 * time.Second}},
	5400: {code: codes.FailedPrecondition, what: "the resource has dependent resources", todo: "remove or detach the dependent resources first"},
	5500: {code: codes.FailedPrecondition, what: "the warehouse service is not enabled", todo: "enable the warehouse service"},
	5600: {code: codes.InvalidArgument, what: "the disk type is not supported here", todo: "choose a disk type the instance supports"},
	8000: {code: codes.InvalidArgument, what: "command parameters failed validation", todo: "fix the parameters"},
	8001: {code: codes.FailedPrecondition, what: "the configuration has no image", todo: "add an image to the application configuration"},
	8002: {code: codes.FailedPrecondition, what: "the configuration's image is not in this zone", todo: "use an image available in the zone"},
	8003: {code: codes.InvalidArgument, what: "the cluster settings are invalid", todo: "fix the cluster settings"},
	8004: {code: codes.FailedPrecondition, what: "the configuration file is missing", todo: "provide the configuration file"},
}

// The plain meanings of 1400 and 2500, which refine1400 and refine2500 fall back to.
var (
	denied1400 = entry{code: codes.PermissionDenied, what: "access denied", todo: "check that the resources exist in this zone, belong to this account, and that the key may use the action"}
	quota2500  = entry{code: codes.ResourceExhausted, what: "a resource quota was exceeded", todo: "release resources or ask QingCloud for a higher quota"}
)

// refined returns e with a message-based refinement.
func refined(e entry, refine func(string) entry) entry {
	e.refine = refine
	return e
}

// unknownEntry maps codes outside the table.
var unknownEntry = entry{code: codes.Unknown, what: "QingCloud reported an unknown error", todo: "see the upstream message"}

// transitionRE finds QingCloud's "resource [id] is [state]" phrase.
var transitionRE = regexp.MustCompile(`\bis \[([a-z_-]+)\]`)

// refine1400 tells apart the meanings of 1400: a resource that is busy (in a transition, or its lease
// not ready yet) is worth retrying; a resource in the wrong stable state is a failed precondition; the
// rest is a real permission error.
func refine1400(msg string) entry {
	m := strings.ToLower(msg)
	if st := transitionRE.FindStringSubmatch(m); st != nil && strings.HasSuffix(st[1], "ing") {
		return entry{code: codes.Unavailable, what: "the resource is busy (" + st[1] + ")", todo: "retry when the operation in progress has finished", retry: retry{retryable: true, delay: 5 * time.Second}}
	}
	if strings.Contains(m, "lease info not ready") {
		return entry{code: codes.Unavailable, what: "the resource was created moments ago and its lease is not ready", todo: "retry in 15 to 30 seconds", retry: retry{retryable: true, delay: 15 * time.Second}}
	}
	if strings.Contains(m, "please try later") || strings.Contains(m, "try again later") || strings.Contains(msg, "请稍后") {
		return entry{code: codes.Unavailable, what: "the resource is busy", todo: "retry later", retry: retry{retryable: true, delay: 5 * time.Second}}
	}
	if transitionRE.MatchString(m) || strings.Contains(m, "is not running") || strings.Contains(m, "not available") ||
		strings.Contains(m, "can not") || strings.Contains(m, "cannot") {
		return entry{code: codes.FailedPrecondition, what: "the resource is not in a state that allows the action", todo: "bring the resource into the required state first (see the upstream message)"}
	}
	if strings.Contains(m, "can't handle this request") {
		return entry{code: codes.PermissionDenied, what: "access denied", todo: "check the action name (QingCloud answers unknown actions this way) and the key's permissions"}
	}
	return denied1400
}

// refine2500 tells the API request quota (worth coming back to later) from a resource quota.
func refine2500(msg string) entry {
	m := strings.ToLower(msg)
	for _, w := range []string{"api", "request", "rate", "frequen", "too many", "try later", "访问", "频繁"} {
		if strings.Contains(m, w) {
			return entry{code: codes.ResourceExhausted, what: "the account's API request quota is used up", todo: "slow down and retry later", retry: retry{delay: time.Minute}}
		}
	}
	return quota2500
}

// classify returns the table row for a QingCloud error answer.
func classify(retCode int, message string) entry {
	e, ok := table[retCode]
	if !ok {
		return unknownEntry
	}
	if e.refine != nil {
		return e.refine(message)
	}
	return e
}

// Retryable reports whether the same request may succeed when repeated later: ret_code 5000, 5100, 5300,
// and 1400 when the message says the resource is busy ("please try later", "lease info not ready",
// "is [<transition>]"). It does not say whether repeating is safe; that depends on the action.
func Retryable(retCode int, message string) bool {
	return classify(retCode, message).retryable
}

// FromRetCode maps a QingCloud error answer to a gRPC status error with exactly one ErrorInfo (reason
// "QINGCLOUD_<ret_code>", Domain, metadata action, ret_code and message), RetryInfo when coming back
// later may help, and a QuotaFailure for 2500. The status message names the action, says what happened
// and what to do, and quotes the upstream message.
func FromRetCode(action string, retCode int, message string) error {
	return fromRetCode(action, retCode, message, false)
}

// AnswerMayHaveApplied reports whether a QingCloud error answer leaves open whether a mutating action
// was applied: 5000 (an unknown internal error) and 5100 (server busy, which QingCloud also answers
// when the execution timed out). Every other error answer means QingCloud refused the action.
func AnswerMayHaveApplied(retCode int) bool { return retCode == 5000 || retCode == 5100 }

// FromMutationRetCode is FromRetCode for an action that changes something. When the answer leaves open
// whether the action was applied ([AnswerMayHaveApplied]), the ErrorInfo metadata also carries
// may_have_applied "true" and the message tells the caller to check the result before repeating.
func FromMutationRetCode(action string, retCode int, message string) error {
	return fromRetCode(action, retCode, message, AnswerMayHaveApplied(retCode))
}

func fromRetCode(action string, retCode int, message string, mayHaveApplied bool) error {
	e := classify(retCode, message)
	upstream := sanitize(message)
	var b strings.Builder
	fmt.Fprintf(&b, "QingCloud %s failed with ret_code %d: %s", actionOr(action), retCode, e.what)
	if upstream != "" {
		fmt.Fprintf(&b, " (QingCloud said: %q)", upstream)
	}
	b.WriteString("; " + e.todo)
	meta := map[string]string{
		"action":   action,
		"ret_code": strconv.Itoa(retCode),
		"message":  upstream,
	}
	if mayHaveApplied {
		meta["may_have_applied"] = "true"
		b.WriteString("; the action may have been applied: check the result before repeating it")
	}
	var details []protoadapt.MessageV1
	if retCode == 2500 {
		subject, desc := "resources", "resource quota exceeded"
		if e.delay > 0 {
			subject, desc = "api_requests", "API request quota exceeded"
		}
		if upstream != "" {
			desc += ": " + upstream
		}
		details = append(details, &errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: subject, Description: desc}}})
	}
	if e.delay > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(e.delay)})
	}
	return New(e.code, ReasonPrefix+strconv.Itoa(retCode), b.String(), meta, details...)
}

// IsAPIRateLimit reports whether a 2500 answer is about the account's API request quota (worth coming
// back to later) rather than a resource quota.
func IsAPIRateLimit(retCode int, message string) bool {
	return retCode == 2500 && classify(retCode, message).delay > 0
}

// Transport reports an upstream failure that is not a QingCloud answer (connection, HTTP status, bad
// body) as UNAVAILABLE with ErrorInfo reason UPSTREAM_UNAVAILABLE and metadata action, detail and
// may_have_applied ("true"/"false"). detail says what came back, e.g. "upstream answered HTTP 502"; it
// must not contain secrets or signed URLs. mayHaveApplied is false only when the request provably never
// reached QingCloud, so repeating it is safe.
func Transport(action, detail string, mayHaveApplied bool) error {
	detail = sanitize(detail)
	msg := fmt.Sprintf("QingCloud %s: %s; ", actionOr(action), detail)
	if mayHaveApplied {
		msg += "the request reached QingCloud and may have been applied: check the result before repeating a change"
	} else {
		msg += "the request did not reach QingCloud, so it is safe to retry"
	}
	return New(codes.Unavailable, ReasonUpstreamUnavailable, msg, map[string]string{
		"action":           action,
		"detail":           detail,
		"may_have_applied": strconv.FormatBool(mayHaveApplied),
	})
}

// Context reports that the caller's context ended while QingCloud was being asked: CANCELED for
// context.Canceled, DEADLINE_EXCEEDED otherwise, with metadata action and may_have_applied.
func Context(action string, ctxErr error, mayHaveApplied bool) error {
	code, reason, what := codes.DeadlineExceeded, ReasonDeadlineExceeded, "the deadline passed before QingCloud answered"
	if errors.Is(ctxErr, context.Canceled) {
		code, reason, what = codes.Canceled, ReasonCanceled, "the call was canceled before QingCloud answered"
	}
	msg := fmt.Sprintf("QingCloud %s: %s", actionOr(action), what)
	if mayHaveApplied {
		msg += "; the request reached QingCloud and may have been applied: check the result before repeating a change"
	}
	return New(code, reason, msg, map[string]string{
		"action":           action,
		"may_have_applied": strconv.FormatBool(mayHaveApplied),
	})
}

// InvalidRequest reports a request that cannot be turned into QingCloud parameters (INVALID_ARGUMENT,
// reason INVALID_REQUEST).
func InvalidRequest(action, detail string) error {
	detail = sanitize(detail)
	return New(codes.InvalidArgument, ReasonInvalidRequest, fmt.Sprintf("QingCloud %s: the request cannot be sent: %s; fix the request", actionOr(action), detail),
		map[string]string{"action": action, "detail": detail})
}

// Info returns the ErrorInfo of an error made by this package (or any status error that carries one),
// or nil.
func Info(err error) *errdetails.ErrorInfo {
	st, ok := status.FromError(err)
	if !ok || st == nil {
		return nil
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// RetCode returns the QingCloud ret_code carried by an error from FromRetCode.
func RetCode(err error) (int, bool) {
	info := Info(err)
	if info == nil || info.GetDomain() != Domain || !strings.HasPrefix(info.GetReason(), ReasonPrefix) {
		return 0, false
	}
	n, convErr := strconv.Atoi(info.GetMetadata()["ret_code"])
	return n, convErr == nil
}

// MayHaveApplied reports whether an error says the request may have been applied: a Transport or
// Context error after the request may have reached QingCloud, or a FromMutationRetCode error whose
// answer leaves the outcome open. Other errors (definite QingCloud answers, refusals before sending)
// report false.
func MayHaveApplied(err error) bool {
	info := Info(err)
	return info != nil && info.GetDomain() == Domain && info.GetMetadata()["may_have_applied"] == "true"
}

// RetryDelay returns the RetryInfo delay of a status error, if it carries one.
func RetryDelay(err error) (time.Duration, bool) {
	st, ok := status.FromError(err)
	if !ok || st == nil {
		return 0, false
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

// Budget describes a refusal by the client-side quota budget (package budget).
type Budget struct {
	// Class is the call class refused ("user" or "poll").
	Class string
	// ClassLimit is the most requests the class may make per Window.
	ClassLimit int
	// Limit is the access key's whole budget per Window.
	Limit int
	// Window is the budget's sliding window.
	Window time.Duration
	// RetryAfter is when a request of the class will be admitted again.
	RetryAfter time.Duration
	// Attempts is the number of upstream attempts the call had already made (0 when refused at once).
	Attempts int
	// Last is the error of the last attempt, when the budget ran out between retries.
	Last error
}

// BudgetExhausted reports that the client-side quota budget refused an upstream request, so the call
// never reached QingCloud with it: RESOURCE_EXHAUSTED with ErrorInfo reason QUOTA_BUDGET_EXHAUSTED
// (metadata action, call_class, class_limit, limit, window_seconds, retry_after_seconds), a
// QuotaFailure (subject "api_requests/<class>") and RetryInfo saying when to come back.
func BudgetExhausted(action string, b Budget) error {
	retry := b.RetryAfter.Round(time.Millisecond)
	if retry <= 0 {
		retry = time.Millisecond
	}
	msg := fmt.Sprintf("QingCloud %s: the server's budget of %d QingCloud API requests per %v for %s calls (of %d for the access key) is spent; retry after %v",
		actionOr(action), b.ClassLimit, b.Window, b.Class, b.Limit, retry)
	if b.Last != nil {
		msg += fmt.Sprintf(" (the call stopped after %d attempts; the last failed: %s)", b.Attempts, sanitize(status.Convert(b.Last).Message()))
	}
	return New(codes.ResourceExhausted, ReasonBudgetExhausted, msg,
		map[string]string{
			"action":              action,
			"call_class":          b.Class,
			"class_limit":         strconv.Itoa(b.ClassLimit),
			"limit":               strconv.Itoa(b.Limit),
			"window_seconds":      strconv.FormatFloat(b.Window.Seconds(), 'f', -1, 64),
			"retry_after_seconds": strconv.FormatFloat(retry.Seconds(), 'f', -1, 64),
		},
		&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{
			Subject:     "api_requests/" + b.Class,
			Description: fmt.Sprintf("%d QingCloud API requests per %v for %s calls", b.ClassLimit, b.Window, b.Class),
		}}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(retry)},
	)
}

func actionOr(action string) string {
	if action == "" {
		return "call"
	}
	return action
}

// sanitize makes upstream text safe to show: valid UTF-8, no control characters, at most maxMessage
// bytes, no URL query strings (which could carry a signature).
func sanitize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = redactQueries(s)
	s = strings.TrimSpace(s)
	if len(s) > maxMessage {
		cut := maxMessage
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

// queryRE matches the query string of a URL; signatureRE a signature parameter anywhere.
var (
	queryRE     = regexp.MustCompile(`\?[A-Za-z0-9_.~%-]+=[^\s"']*`)
	signatureRE = regexp.MustCompile(`signature=[^\s&"']*`)
)

// redactQueries removes URL query strings and signature parameters from s.
func redactQueries(s string) string {
	if strings.Contains(s, "?") {
		s = queryRE.ReplaceAllString(s, "?[redacted]")
	}
	if strings.Contains(s, "signature=") {
		s = signatureRE.ReplaceAllString(s, "[redacted]")
	}
	return s
}
