// Package api is the action table of qingcloud-grpc, derived once from the generated descriptors of
// package qingcloud.iaas.v1: every RPC with a (qingcloud.iaas.v1.action) option is a [Method] that
// names its QingCloud action, whether the action only reads, whether upstream wants POST, the request
// and response types and, for the paginating variant of a list action, the item field it streams.
//
// Every other package takes the resolved action from here instead of reading the options itself:
//
//   - lookups by gRPC full method ([ByFullMethod]) and by action name ([ByAction]), and the list of
//     methods ([Methods]) and actions ([Actions]);
//   - whether any action only reads ([ReadOnly]): the typed action's read_only flag, or QingCloud's
//     naming rule (Describe*, Get*, package [naming]) for an action outside the typed set;
//   - the metrics label of an action ([MetricsLabel]): the action, or [OtherAction] for any action
//     outside the typed set, so that no caller can grow the label set;
//   - field metadata: the QingCloud name of a field ([WireName], [FieldByWireName]) and whether the
//     spec requires it ([IsRequired]);
//   - the parameters a caller may never supply ([Reserved]);
//   - the resource kinds a watch can follow ([ResourceKinds]), derived from the shape of the Describe
//     actions.
//
// The syntax of an action name and the read-only naming rule live in the leaf package [naming], which
// imports nothing generated, so the proto generator (internal/specgen) shares them.
//
// Dependencies point one way: api imports the generated package (gen/) and the signer's parameter
// names; codec (the wire encoder and decoder) builds on api's wire names; backend, server, telemetry,
// watch and the emulator build on api. api imports none of them.
package api

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api/naming"
)

// Package is the proto package whose RPCs are QingCloud actions.
const Package protoreflect.FullName = naming.Package

// OtherAction is the metrics label of every action outside the typed set (CallService may name any
// action), so that no caller can grow the label set.
const OtherAction = "other"

// Method is one RPC backed by a QingCloud action, as its descriptor and (qingcloud.iaas.v1.action)
// option say. Methods are built once and shared; never modify one.
type Method struct {
	// Desc is the RPC's descriptor.
	Desc protoreflect.MethodDescriptor
	// FullMethod is the gRPC method name, "/qingcloud.iaas.v1.InstanceService/RunInstances".
	FullMethod string
	// Action is the QingCloud action name sent as the action parameter, "RunInstances".
	Action string
	// ReadOnly is the option's read_only flag: the action only reads, so it may be retried and
	// identical concurrent calls may share one upstream request.
	ReadOnly bool
	// Post is set when QingCloud wants the parameters as a POST form body rather than a GET query.
	Post bool
	// ItemField is set on the server-streaming, paginating variant of a list action
	// (DescribeInstancesAll): the repeated field of the action's response whose elements it streams.
	ItemField string
	// Input and Output are the request and response message types. For a paginating variant Output is
	// the item message it streams; the action's own response is that of [ByAction].
	Input, Output protoreflect.MessageType
}

// Streams reports whether the RPC is the server-streaming, paginating variant of a list action.
func (m *Method) Streams() bool { return m.ItemField != "" }

// table is the action table, built once from the registered descriptors.
type table struct {
	methods  []*Method          // sorted by FullMethod
	byFull   map[string]*Method // every method
	byAction map[string]*Method // the unary method of each action
	actions  []string           // the action names, sorted
	kinds    []ResourceKind     // sorted by Action
	err      error              // what is wrong with the descriptors, if anything
}

var load = sync.OnceValue(func() *table { return build(protoregistry.GlobalFiles, protoregistry.GlobalTypes) })

// messageTypes finds the Go type of a message; *protoregistry.Types is one.
type messageTypes interface {
	FindMessageByName(protoreflect.FullName) (protoreflect.MessageType, error)
}

// build walks the RPCs of Package in files. A method that breaks a rule of the table is left out and
// reported in err (which [Check] returns), so lookups stay usable while the server refuses to start.
func build(files *protoregistry.Files, types messageTypes) *table {
	t := &table{byFull: map[string]*Method{}, byAction: map[string]*Method{}}
	var errs []string
	files.RangeFilesByPackage(Package, func(fd protoreflect.FileDescriptor) bool {
		svcs := fd.Services()
		for i := 0; i < svcs.Len(); i++ {
			ms := svcs.Get(i).Methods()
			for j := 0; j < ms.Len(); j++ {
				m, err := newMethod(ms.Get(j), types)
				if err != nil {
					errs = append(errs, err.Error())
				}
				if m != nil {
					t.methods = append(t.methods, m)
				}
			}
		}
		return true
	})
	slices.SortFunc(t.methods, func(a, b *Method) int { return strings.Compare(a.FullMethod, b.FullMethod) })
	for _, m := range t.methods {
		t.byFull[m.FullMethod] = m
		if m.Streams() {
			continue
		}
		if prev := t.byAction[m.Action]; prev != nil {
			errs = append(errs, fmt.Sprintf("%s and %s both call action %s", prev.FullMethod, m.FullMethod, m.Action))
			continue
		}
		t.byAction[m.Action] = m
		t.actions = append(t.actions, m.Action)
	}
	for _, m := range t.methods {
		if !m.Streams() {
			continue
		}
		base := t.byAction[m.Action]
		if base == nil {
			errs = append(errs, fmt.Sprintf("%s pages action %s, which has no unary RPC", m.FullMethod, m.Action))
			continue
		}
		if f := base.Output.Descriptor().Fields().ByName(protoreflect.Name(m.ItemField)); f == nil || !f.IsList() || f.Message() == nil {
			errs = append(errs, fmt.Sprintf("%s pages item_field %q, which is not a repeated message field of %s", m.FullMethod, m.ItemField, base.Output.Descriptor().FullName()))
		}
	}
	slices.Sort(t.actions)
	t.kinds = deriveKinds(t)
	if len(errs) > 0 {
		t.err = fmt.Errorf("api: the action table of %s is inconsistent: %s", Package, strings.Join(errs, "; "))
	}
	return t
}

// newMethod describes md, or returns nil when md has no action option.
func newMethod(md protoreflect.MethodDescriptor, types messageTypes) (*Method, error) {
	a, _ := proto.GetExtension(md.Options(), iaasv1.E_Action).(*iaasv1.Action)
	if a.GetName() == "" {
		return nil, nil
	}
	if !naming.ValidAction(a.GetName()) {
		return nil, fmt.Errorf("%s: action name %q is not a QingCloud action name", md.FullName(), a.GetName())
	}
	if md.IsStreamingClient() || md.IsStreamingServer() != (a.GetItemField() != "") {
		return nil, fmt.Errorf("%s: only the paginating variants of list actions (item_field set) may stream, and only from the server", md.FullName())
	}
	m := &Method{
		Desc:       md,
		FullMethod: fmt.Sprintf("/%s/%s", md.Parent().FullName(), md.Name()),
		Action:     a.GetName(),
		ReadOnly:   a.GetReadOnly(),
		Post:       a.GetPost(),
		ItemField:  a.GetItemField(),
	}
	var err error
	if m.Input, err = types.FindMessageByName(md.Input().FullName()); err != nil {
		return nil, fmt.Errorf("%s input: %w", md.FullName(), err)
	}
	if m.Output, err = types.FindMessageByName(md.Output().FullName()); err != nil {
		return nil, fmt.Errorf("%s output: %w", md.FullName(), err)
	}
	return m, nil
}

// Check reports what is wrong with the action table of the linked descriptors (an RPC that streams
// without item_field, a paginating variant without its unary RPC, two RPCs calling the same action,
// a type that is not linked in), or nil. A server refuses to start on an error.
func Check() error { return load().err }

// Methods returns every action RPC, unary and paginating variants alike, sorted by full method name.
// The slice is the caller's; the Methods are shared.
func Methods() []*Method { return slices.Clone(load().methods) }

// ByFullMethod returns the action RPC of a gRPC full method name
// ("/qingcloud.iaas.v1.InstanceService/DescribeInstancesAll"), or nil.
func ByFullMethod(fullMethod string) *Method { return load().byFull[fullMethod] }

// ByAction returns the unary RPC that calls a QingCloud action, or nil when the action is outside the
// typed set.
func ByAction(action string) *Method { return load().byAction[action] }

// Actions returns the names of the typed actions, sorted.
func Actions() []string { return slices.Clone(load().actions) }

// ReadOnly reports whether action only reads, which lets the retry policy repeat it and identical
// concurrent calls share one upstream request: the read_only flag of the typed action, or, for an
// action outside the typed set, QingCloud's naming rule ([naming.ReadOnlyByName]), which the flag
// follows for every typed action too.
func ReadOnly(action string) bool {
	if m := ByAction(action); m != nil {
		return m.ReadOnly
	}
	return naming.ReadOnlyByName(action)
}

// MetricsLabel returns the metrics label of action: the action itself when it is typed, else
// [OtherAction].
func MetricsLabel(action string) string {
	if ByAction(action) != nil {
		return action
	}
	return OtherAction
}
