package operations

import (
	"fmt"
	"strings"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/zone"
)

// Collection is the collection id of operation names, and the name ListOperations takes.
const Collection = "operations"

// maxNameLen bounds the operation names we parse; a longer name is refused before it is looked at.
const maxNameLen = 128

// Name is an operation's name: the QingCloud job it follows, and the job's zone when the job is not
// in the caller's default zone.
type Name struct {
	// Zone is the job's zone; "" means the caller's default zone.
	Zone string
	// JobID is the QingCloud job id, "j-xxxxxxxx".
	JobID string
}

// String formats n as "operations/<job_id>", or "operations/<zone>/<job_id>" when Zone is set.
func (n Name) String() string {
	if n.Zone == "" {
		return Collection + "/" + n.JobID
	}
	return Collection + "/" + n.Zone + "/" + n.JobID
}

// ParseName parses "operations/<job_id>" or "operations/<zone>/<job_id>". The error says what is
// wrong in words a caller can act on.
func ParseName(s string) (Name, error) {
	if len(s) > maxNameLen {
		return Name{}, fmt.Errorf("operation name is %d bytes long; names look like operations/j-xxxxxxxx", len(s))
	}
	rest, ok := strings.CutPrefix(s, Collection+"/")
	if !ok {
		return Name{}, fmt.Errorf("operation name %q does not start with %q; names look like operations/j-xxxxxxxx", s, Collection+"/")
	}
	var n Name
	if zone, job, ok := strings.Cut(rest, "/"); ok {
		if !validZone(zone) {
			return Name{}, fmt.Errorf("operation name %q: zone %q is not a zone id (lower-case letters and digits, e.g. pek3b)", s, zone)
		}
		n.Zone, rest = zone, job
	}
	if !validJobID(rest) {
		return Name{}, fmt.Errorf("operation name %q: %q is not a QingCloud job id (j- followed by lower-case letters and digits)", s, rest)
	}
	n.JobID = rest
	return n, nil
}

// validJobID reports whether s looks like a QingCloud job id.
func validJobID(s string) bool {
	id, ok := strings.CutPrefix(s, "j-")
	if !ok || id == "" || len(id) > 32 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// validZone reports whether s is a zone id, by the one zone rule.
func validZone(s string) bool { return zone.Valid(s) }
