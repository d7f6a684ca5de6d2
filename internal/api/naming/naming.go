// Package naming holds the QingCloud naming rules that must hold without the generated code: the proto
// package of the API, the syntax of an action name, and which actions only read by their name.
//
// It imports nothing of this module, so both the generator that writes proto/ from the Swagger specs
// (internal/specgen, which cannot depend on gen/) and the descriptor-derived action table (internal/api)
// use the same rules.
package naming

import (
	"regexp"
	"strings"
)

// Package is the proto package whose RPCs are QingCloud actions.
const Package = "qingcloud.iaas.v1"

// actionRE is the syntax of a QingCloud action name: PascalCase letters and digits, 2 to 80 long.
var actionRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9]{1,79}$`)

// ValidAction reports whether name is a well-formed QingCloud action name (PascalCase letters and
// digits, e.g. DescribeInstances). It says nothing about whether QingCloud knows the action.
func ValidAction(name string) bool { return actionRE.MatchString(name) }

// ReadOnlyByName reports whether an action only reads by QingCloud's naming: its name starts with
// Describe or Get. The generator sets the read_only flag of every typed action by this rule; for an
// action outside the typed set the rule is all there is.
func ReadOnlyByName(action string) bool {
	return strings.HasPrefix(action, "Describe") || strings.HasPrefix(action, "Get")
}
