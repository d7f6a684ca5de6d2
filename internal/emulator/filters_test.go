package emulator_test

import (
	"strings"
	"testing"
)

// TestUndeclaredFiltersIgnored: status.N, tags.N and search_word filter a Describe action only when
// its request declares them; elsewhere they are unknown parameters, which are ignored.
// DescribeSecurityGroupRules declares none of them, DescribeSecurityGroups declares all three.
func TestUndeclaredFiltersIgnored(t *testing.T) {
	f := newFixture(t, nil)
	sg := f.c.ok("CreateSecurityGroup", "security_group_name", "web")["security_group_id"].(string)
	f.c.ok("AddSecurityGroupRules", "security_group", sg, "rules.1.protocol", "tcp", "rules.1.priority", "1",
		"rules.1.action", "accept", "rules.1.val1", "22")
	for _, kv := range [][]string{
		{"status.1", "active"}, {"status.1", "nothing"}, {"tags.1", "tag-zzzzzzzz"}, {"search_word", "no-such-rule"},
	} {
		got := num(f.c.ok("DescribeSecurityGroupRules", append([]string{"security_group", sg}, kv...)...)["total_count"])
		if got != 1 {
			t.Errorf("DescribeSecurityGroupRules with %s=%s: %d rules, want 1 (the parameter is not in its spec)", kv[0], kv[1], got)
		}
	}
	if got := num(f.c.ok("DescribeSecurityGroups", "security_groups.1", sg, "search_word", "no-such-group")["total_count"]); got != 0 {
		t.Errorf("DescribeSecurityGroups search_word that matches nothing: %d groups, want 0", got)
	}
	if got := num(f.c.ok("DescribeSecurityGroups", "security_groups.1", sg, "tags.1", "tag-zzzzzzzz")["total_count"]); got != 0 {
		t.Errorf("DescribeSecurityGroups tags.1 of no tag: %d groups, want 0", got)
	}
}

// TestBasicNetworkRefusals: vxnet-0 can be neither deleted nor modified, and the refusals say why.
func TestBasicNetworkRefusals(t *testing.T) {
	f := newFixture(t, nil)
	for _, c := range []struct {
		action string
		kv     []string
		want   string
	}{
		{"DeleteVxnets", []string{"vxnets.1", "vxnet-0"}, "vxnet [vxnet-0] is the basic network, can not be deleted"},
		{"ModifyVxnetAttributes", []string{"vxnet", "vxnet-0", "vxnet_name", "x"}, "vxnet [vxnet-0] is the basic network, can not be modified"},
	} {
		if msg := f.c.fail(1400, c.action, c.kv...); !strings.Contains(msg, c.want) {
			t.Errorf("%s: %q, want it to say %q", c.action, msg, c.want)
		}
	}
}
