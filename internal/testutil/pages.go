package testutil

import (
	"fmt"
	"strings"
)

// instanceOfPage is one verbose instance of InstancesPage, as QingCloud writes it; its verbs are the
// instance's number, the last byte of its address and its name's number.
const instanceOfPage = `{"vcpus_current":1,"instance_id":"i-%08d","image":{"processor_type":"64bit","platform":"linux",
"image_size":20,"image_name":"CentOS 7.7 64bit","image_id":"centos77x64a","os_family":"centos","provider":"system"},
"vxnets":[{"vxnet_name":"primary vxnet","vxnet_type":1,"vxnet_id":"vxnet-0","nic_id":"52:54:6d:56:6d:1b","private_ip":"10.50.15.%d"}],
"memory_current":1024,"sub_code":0,"transition_status":"","instance_name":"web-%d","instance_type":"s1.small.r1",
"create_time":"2013-08-28T14:26:03Z","status":"running","status_time":"2013-08-29T06:25:56Z","description":null,
"eip":{"eip_id":"eip-1234abcd","eip_addr":"121.201.7.44","bandwidth":2},
"security_group":{"is_default":1,"security_group_id":"sg-z13kokni","security_group_name":"default security group"},
"volume_ids":["vol-g7xy7d6g"],"keypair_ids":["kp-bn2n77ow"],"tags":[{"tag_id":"tag-1","tag_name":"prod"}]}`

// InstancesPage returns a DescribeInstances answer of n verbose instances in the documented shape (the
// page the codec's and the REST writer's benchmarks use).
func InstancesPage(n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"action":"DescribeInstancesResponse","ret_code":0,"total_count":%d,"instance_set":[`, n)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, instanceOfPage, i, i%250, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}
