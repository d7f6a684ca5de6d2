package server

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
)

// PageSize is the page the paginating variants ask QingCloud for: its maximum.
const PageSize = 100

// serveAllPages serves the <Action>All variant of a list action: it calls the action page by page
// (offset/limit 100) and sends every item once, in QingCloud's order, until total_count items were
// seen or a page comes back short.
func (s *Server) serveAllPages(ctx context.Context, m *api.Method, req proto.Message, send func(proto.Message) error) error {
	base := api.ByAction(m.Action)
	breq := base.Input.New()
	if err := copyFields(req, breq.Interface()); err != nil {
		return status.Errorf(codes.Internal, "%s: %v", m.FullMethod, err)
	}
	be, zone, err := s.tenant(ctx)
	if err != nil {
		return err
	}
	if err := prepare(breq.Interface(), zone); err != nil {
		return err
	}
	in := base.Input.Descriptor().Fields()
	offsetF, limitF := in.ByName("offset"), in.ByName("limit")
	out := base.Output.Descriptor().Fields()
	setF, totalF := out.ByName(protoreflect.Name(m.ItemField)), out.ByName("total_count")
	if offsetF == nil || limitF == nil || setF == nil || !setF.IsList() || setF.Message() == nil {
		return status.Errorf(codes.Internal, "%s: the API description of %s does not page (item_field %q)", m.FullMethod, base.Action, m.ItemField)
	}
	item := m.Output.Descriptor().Fields()
	itemF, countF, indexF := item.ByNumber(1), item.ByName("total_count"), item.ByName("index")
	idF := setF.Message().Fields().ByName(protoreflect.Name(strings.TrimSuffix(string(setF.Name()), "_set") + "_id"))

	seen := map[string]bool{}
	index, offset := int64(0), int64(0)
	for {
		breq.Set(offsetF, intValue(offsetF, offset))
		breq.Set(limitF, intValue(limitF, PageSize))
		resp, err := be.InvokeMethod(ctx, base, breq.Interface())
		if err != nil {
			return err
		}
		r := resp.ProtoReflect()
		list := r.Get(setF).List()
		for i := 0; i < list.Len(); i++ {
			it := list.Get(i).Message()
			if idF != nil {
				if id := it.Get(idF).String(); id != "" {
					if seen[id] {
						continue
					}
					seen[id] = true
				}
			}
			msg := m.Output.New()
			msg.Set(itemF, protoreflect.ValueOfMessage(it))
			if totalF != nil && r.Has(totalF) && countF != nil {
				msg.Set(countF, intValue(countF, r.Get(totalF).Int()))
			}
			if indexF != nil {
				msg.Set(indexF, intValue(indexF, index))
			}
			index++
			if err := send(msg.Interface()); err != nil {
				return err
			}
		}
		offset += int64(list.Len())
		switch {
		case list.Len() == 0:
			return nil
		case totalF != nil && r.Has(totalF):
			if offset >= r.Get(totalF).Int() {
				return nil
			}
		case list.Len() < PageSize:
			return nil
		}
		if err := ctx.Err(); err != nil {
			return status.FromContextError(err).Err()
		}
	}
}

// copyFields copies the fields of src into the same-named fields of dst (the paginating request
// into the action's own request), nested messages included.
func copyFields(src, dst proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(src)
	if err != nil {
		return fmt.Errorf("copy request: %w", err)
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, dst); err != nil {
		return fmt.Errorf("copy request: %w", err)
	}
	return nil
}

func intValue(fd protoreflect.FieldDescriptor, v int64) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(v))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(v)
	}
	return protoreflect.ValueOfInt64(v) // unreachable for generated integer fields; Set will reject it
}
