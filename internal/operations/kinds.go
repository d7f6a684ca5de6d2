package operations

import (
	"strings"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/watch"
)

// resourceKind is how to describe resources of one kind: the Describe action and its id parameter,
// taken from the watch hub's kind table.
type resourceKind struct {
	action  string
	idParam string
}

// idPrefixes maps QingCloud's resource id prefixes (qingcloud-protocol.md, "ID formats") to the
// kinds of watch.Kinds, so that a job's resource_ids can be described.
var idPrefixes = map[string]string{
	"i":     "instance",
	"vol":   "volume",
	"eip":   "eip",
	"rtr":   "router",
	"lb":    "loadbalancer",
	"img":   "image",
	"ss":    "snapshot",
	"vxnet": "vxnet",
	"sg":    "security_group",
	"kp":    "keypair",
	"s2":    "s2_server",
	"c":     "cache",
	"rdb":   "rdb",
	"mongo": "mongo",
}

// kinds indexes watch.Kinds by id prefix.
var kinds = func() map[string]*resourceKind {
	byName := map[string]*resourceKind{}
	for _, k := range watch.Kinds {
		byName[k.Name] = &resourceKind{action: k.Action, idParam: k.IDParam}
	}
	out := map[string]*resourceKind{}
	for prefix, name := range idPrefixes {
		if k := byName[name]; k != nil {
			out[prefix] = k
		}
	}
	return out
}()

// kindOf returns the kind of a resource id by its prefix, or nil.
func kindOf(id string) *resourceKind {
	prefix, _, ok := strings.Cut(id, "-")
	if !ok {
		return nil
	}
	return kinds[prefix]
}
