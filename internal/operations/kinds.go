package operations

import (
	"strings"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
)

// describeByPrefix maps QingCloud's resource id prefixes (qingcloud-protocol.md, "ID formats") to the
// Describe action that lists resources of that kind, so that a job's resource_ids can be described.
var describeByPrefix = map[string]string{
	"i":     "DescribeInstances",
	"vol":   "DescribeVolumes",
	"eip":   "DescribeEips",
	"rtr":   "DescribeRouters",
	"lb":    "DescribeLoadBalancers",
	"img":   "DescribeImages",
	"ss":    "DescribeSnapshots",
	"vxnet": "DescribeVxnets",
	"sg":    "DescribeSecurityGroups",
	"kp":    "DescribeKeyPairs",
	"s2":    "DescribeS2Servers",
	"c":     "DescribeCaches",
	"rdb":   "DescribeRDBs",
	"mongo": "DescribeMongos",
}

// kindOf returns the resource kind of a resource id by its prefix (false when unknown).
func kindOf(id string) (api.ResourceKind, bool) {
	prefix, _, ok := strings.Cut(id, "-")
	if !ok {
		return api.ResourceKind{}, false
	}
	action, ok := describeByPrefix[prefix]
	if !ok {
		return api.ResourceKind{}, false
	}
	return api.ResourceKindOf(action)
}
