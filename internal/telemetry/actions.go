package telemetry

import (
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// OtherAction is the action label of calls to actions outside the typed API (CallService may name
// any action), so that no caller can grow the label set.
const OtherAction = "other"

var (
	knownOnce    sync.Once
	knownActions map[string]bool
)

// ActionLabel returns action when it is a QingCloud action of the generated descriptors (a method of
// package qingcloud.iaas.v1 with a (qingcloud.iaas.v1.action) option), else OtherAction.
func ActionLabel(action string) string {
	knownOnce.Do(func() {
		knownActions = map[string]bool{}
		protoregistry.GlobalFiles.RangeFilesByPackage("qingcloud.iaas.v1", func(fd protoreflect.FileDescriptor) bool {
			for i := 0; i < fd.Services().Len(); i++ {
				ms := fd.Services().Get(i).Methods()
				for j := 0; j < ms.Len(); j++ {
					if a, ok := proto.GetExtension(ms.Get(j).Options(), iaasv1.E_Action).(*iaasv1.Action); ok && a.GetName() != "" {
						knownActions[a.GetName()] = true
					}
				}
			}
			return true
		})
	})
	if knownActions[action] {
		return action
	}
	return OtherAction
}
