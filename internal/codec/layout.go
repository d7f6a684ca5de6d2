package codec

import (
	"reflect"
	"unsafe"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/protolayout"
)

// structOf returns the layout and the struct address of m when p's layout covers m's Go type.
func (p *msgPlan) structOf(m protoreflect.Message) (*protolayout.Layout, unsafe.Pointer) {
	if p == nil || p.lay == nil || m == nil {
		return nil, nil
	}
	x := m.Interface()
	if reflect.TypeOf(x) != p.lay.Type {
		return nil, nil
	}
	return p.lay, reflect.ValueOf(x).UnsafePointer()
}
