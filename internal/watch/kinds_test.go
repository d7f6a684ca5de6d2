package watch

import (
	"reflect"
	"testing"
)

func TestMustKindsCompletesRows(t *testing.T) {
	got := mustKinds([]Kind{{Action: "DescribeSecurityGroups", AppliedField: "is_applied"}, {Action: "DescribeNics", IPPath: "private_ip"}})
	want := []Kind{
		{Name: "security_group", Action: "DescribeSecurityGroups", IDParam: "security_groups", SetField: "security_group_set",
			IDField: "security_group_id", AppliedField: "is_applied"},
		{Name: "nic", Action: "DescribeNics", IDParam: "nics", SetField: "nic_set", IDField: "nic_id", HasStatus: true, IPPath: "private_ip"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mustKinds = %+v\nwant %+v", got, want)
	}
	// Only keypair, security_group and vxnet items have no status (see Kind.HasStatus).
	for _, k := range Kinds {
		noStatus := k.Name == "keypair" || k.Name == "security_group" || k.Name == "vxnet"
		if k.HasStatus == noStatus {
			t.Errorf("kind %s: HasStatus %v", k.Name, k.HasStatus)
		}
	}
}

func TestMustKindsRefusesOtherShapes(t *testing.T) {
	for _, action := range []string{"RunInstances", "DescribeClusterUsers", "DescribeNothing"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("mustKinds accepted %s", action)
				}
			}()
			mustKinds([]Kind{{Action: action}})
		}()
	}
}
