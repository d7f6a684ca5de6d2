package server_test

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
)

// TestZoneIsAZoneID: a zone that is not a zone id is refused before any upstream call, by typed RPCs
// and by CallService for every action (typed with a zone field, typed without one, unknown), not
// only by some of them.
func TestZoneIsAZoneID(t *testing.T) {
	s := newStack(t, emulator.DefaultSecretAccessKey)
	ctx := ctxT(t)
	call := iaasv1.NewCallServiceClient(s.conn)
	bad := []string{"PEK3A", "pek3a ", " pek3a", "pek3a\nx", "pek3a&action=RunInstances", "pek3a\x00", "pek3a/../x"}
	for _, zone := range bad {
		for _, action := range []string{"DescribeInstances", "DescribeZones", "DescribeSomethingNew"} {
			params, _ := structpb.NewStruct(nil)
			_, err := call.Call(ctx, &iaasv1.CallRequest{Action: action, Zone: proto.String(zone), Params: params})
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("Call %s zone %q: %v, want INVALID_ARGUMENT", action, zone, err)
			}
		}
		_, err := iaasv1.NewInstanceServiceClient(s.conn).DescribeInstances(ctx, &iaasv1.DescribeInstancesRequest{Zone: proto.String(zone)})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("DescribeInstances zone %q: %v, want INVALID_ARGUMENT", zone, err)
		}
	}
	if n := s.emu.Stats().TotalRequests; n != 0 {
		t.Fatalf("bad zones made %d upstream requests", n)
	}
	for _, zone := range []string{"", "pek3a", "sh1a", "ap2a", "gd2"} {
		params, _ := structpb.NewStruct(nil)
		if _, err := call.Call(ctx, &iaasv1.CallRequest{Action: "DescribeZones", Zone: proto.String(zone), Params: params}); err != nil {
			t.Errorf("Call DescribeZones zone %q: %v", zone, err)
		}
	}
}
