package codec_test

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/codec"
)

func printSorted(params map[string]string) {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Printf("%s=%s\n", k, params[k])
	}
}

func ExampleEncode() {
	params, err := codec.Encode(&iaasv1.AddSecurityGroupRulesRequest{
		SecurityGroup: proto.String("sg-6ft05wt6"),
		Rules: []*iaasv1.SecurityGroupRule{{
			Protocol: proto.String("tcp"), Priority: proto.Int32(7), Direction: proto.Int32(0),
			Action: proto.String("accept"), Val1: proto.String("22"), Val2: proto.String(""),
		}},
	})
	if err != nil {
		panic(err)
	}
	printSorted(params)
	// Output:
	// rules.1.action=accept
	// rules.1.direction=0
	// rules.1.priority=7
	// rules.1.protocol=tcp
	// rules.1.val1=22
	// rules.1.val2=
	// security_group=sg-6ft05wt6
}

func ExampleEncodeStruct() {
	s, _ := structpb.NewStruct(map[string]any{
		"instances": []any{"i-1", "i-2"},
		"verbose":   true,
		"limit":     100,
		"env":       map[string]any{"zk": map[string]any{"tick_time": 2000}},
	})
	params, err := codec.EncodeStruct(s)
	if err != nil {
		panic(err)
	}
	printSorted(params)
	// Output:
	// env={"zk":{"tick_time":2000}}
	// instances.1=i-1
	// instances.2=i-2
	// limit=100
	// verbose=1
}

func ExampleDecode() {
	var resp iaasv1.DescribeInstancesResponse
	err := codec.Decode([]byte(`{"action":"DescribeInstancesResponse","ret_code":0,"total_count":"1",
		"instance_set":[{"instance_id":"i-1","vcpus_current":{"oops":1},"eip":{"bandwidth":"50"}}]}`), &resp)
	fmt.Println(resp.GetTotalCount(), resp.GetInstanceSet()[0].GetEip().GetBandwidth())
	fmt.Println(err)
	// Output:
	// 1 50
	// codec: 1 response value(s) did not fit their fields and were skipped: instance_set[0].vcpus_current: want int32, got a JSON object
}
