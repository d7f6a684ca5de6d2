// Package zone is the one rule for the zone of a call, used by typed RPCs, CallService, watches and
// the server's configuration alike.
//
// The zone of a call is the one the request names, or else the default zone of the caller's profile
// ([Resolve]). A zone must be a zone id: a lower-case letter, then 1 to 31 lower-case letters, digits
// or '-' (pek3a, sh1a, ap2a, gd2), which is what QingCloud's zone ids look like. Anything else
// (PEK3A, " pek3a", "pek3a&action=...") is refused before any upstream call, never corrected, so a
// request means the same thing everywhere and costs no quota when it is wrong ([Violation]). Whether
// a call needs a zone at all is the action's business: typed RPCs whose request has a zone field and
// watches need one; CallService sends a zone only when one is named or configured.
package zone

import (
	"fmt"
	"regexp"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
)

// Field is the request field that names the zone, as violations report it.
const Field = "zone"

// idRE matches zone ids.
var idRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,31}$`)

// Valid reports whether z is a zone id such as pek3a.
func Valid(z string) bool { return idRE.MatchString(z) }

// Resolve returns the zone of a call: requested when it is set, else fallback (the default zone of
// the caller's profile, "" when there is none). It does not check the result; see [Violation].
func Resolve(requested, fallback string) string {
	if requested != "" {
		return requested
	}
	return fallback
}

// Violation says what is wrong with the zone z of a call that needs one, or returns nil when z is a
// zone id. An empty z is reported as missing.
func Violation(z string) *errdetails.BadRequest_FieldViolation {
	switch {
	case z == "":
		return qcerr.Violation(Field, "zone is required: set it in the request or configure a default zone on the server")
	case !Valid(z):
		return qcerr.Violation(Field, fmt.Sprintf("zone %q is not a zone id: use a lower-case zone id such as pek3a", clip(z)))
	}
	return nil
}

// clip shortens a zone quoted in a message to about 64 bytes, on a rune boundary.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
