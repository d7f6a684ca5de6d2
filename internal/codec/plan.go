package codec

import (
	"encoding/binary"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/protolayout"
)

// msgPlan is what Decode needs to know about a message type, worked out once per type: how each JSON
// key maps to a field, and for each field its shape, kind and the plan of its messages.
type msgPlan struct {
	md  protoreflect.MessageDescriptor
	wkt wktKind
	// fields is the plan of each field, by fd.Index(); byKey maps the wire name, the proto name and
	// the JSON name of each field to it.
	fields []fieldPlan
	byKey  map[string]*keyRef
	// keys lists byKey's entries (keyRef.id indexes it); next[i] predicts the key that follows key
	// i-1 (next[0]: the first key) as its id+1, 0 for no prediction. Documents of one type repeat
	// their order of keys, so checking the prediction (one comparison) mostly saves the map lookup.
	// It is learned as documents are read; a wrong prediction costs the comparison.
	keys []keyRef
	next []atomic.Int32
	// words is the number of uint64 words of a set of fields.
	words int
	// lay is the layout of the generated Go type; nil when none is linked in.
	lay *protolayout.Layout
	// timestamppb is set when lay is the layout of timestamppb.Timestamp.
	timestamppb bool

	// Well-known types. f1 is field 1: Timestamp's seconds, Struct's fields, ListValue's values, a
	// wrapper's value; f2 is Timestamp's nanos; wrapped the kind of a wrapper's value. value is the
	// plan of google.protobuf.Value for Struct and ListValue.
	f1, f2  protoreflect.FieldDescriptor
	wrapped scalarSpec
	value   *msgPlan
	// Value's members, by field number, and the plans of its struct_value and list_value.
	members              [valueListField + 1]protoreflect.FieldDescriptor
	structPlan, listPlan *msgPlan
}

// wktKind tells which well-known type a message is, if any.
type wktKind uint8

const (
	wktNone wktKind = iota
	wktTimestamp
	wktStruct
	wktValue
	wktListValue
	wktWrapper
	wktOther // Duration, FieldMask, Any, Empty: their canonical JSON form
)

// keyRef is one JSON key that selects a field.
type keyRef struct {
	id    int // index in msgPlan.keys
	field int // fd.Index()
	// alias is set when the key is not the field's wire name; a document that carries both the wire
	// name and an alias is decoded from the wire name.
	alias bool
	key   string // the key itself
	name  int    // the key's id in keyNames, for mismatch paths
	// head and tail are the first and the last eight bytes of a key of at least eight bytes.
	head, tail uint64
}

// is reports whether raw is the key.
func (k *keyRef) is(raw []byte) bool {
	n := len(raw)
	switch {
	case n != len(k.key):
		return false
	case n < 8:
		return string(raw) == k.key
	case binary.LittleEndian.Uint64(raw) != k.head || binary.LittleEndian.Uint64(raw[n-8:]) != k.tail:
		return false
	}
	return n <= 16 || string(raw[8:n-8]) == k.key[8:n-8]
}

// fieldShape is how a field holds its values.
type fieldShape uint8

const (
	shapeSingle fieldShape = iota
	shapeList
	shapeMap
)

// fieldPlan is the plan of one field. For a map field, msg, sc and holdsValue describe its values.
type fieldPlan struct {
	fd    protoreflect.FieldDescriptor
	shape fieldShape
	// msg is the plan of the field's messages; nil for scalars, which sc describes.
	msg *msgPlan
	sc  scalarSpec
	// holdsValue is set for google.protobuf.Value elements, where null is a value of its own.
	holdsValue bool
	// keyKind is the kind of a map's keys.
	keyKind protoreflect.Kind
	// direct is set on an OpMsg or OpMsgs field whose messages' Go type is msg's layout: the decoder
	// makes them with protolayout.Slab.New and fills them through the layout.
	direct bool
}

// scalarSpec is the kind of a scalar field (and its enum type).
type scalarSpec struct {
	kind protoreflect.Kind
	enum protoreflect.EnumDescriptor
	// id is set on a singular string field named *_id (job_id, instance_id): QingCloud answers some
	// of them as a one-element list (CreateSnapshots' job_id since 2024), which means its element.
	id bool
}

var (
	plans   sync.Map // protoreflect.MessageDescriptor -> *msgPlan, complete ones only
	plansMu sync.Mutex
)

// planOf returns the plan of md, building the plans of md and every message type it reaches on
// first use.
func planOf(md protoreflect.MessageDescriptor) *msgPlan {
	if p, ok := plans.Load(md); ok {
		return p.(*msgPlan)
	}
	plansMu.Lock()
	defer plansMu.Unlock()
	building := map[protoreflect.MessageDescriptor]*msgPlan{}
	p := buildPlan(md, building)
	for _, v := range building {
		v.link()
	}
	// Published only when the whole graph (recursive types included) is complete.
	for k, v := range building {
		plans.Store(k, v)
	}
	return p
}

// buildPlan builds the plan of md; building holds the plans under construction (for recursion).
func buildPlan(md protoreflect.MessageDescriptor, building map[protoreflect.MessageDescriptor]*msgPlan) *msgPlan {
	if p, ok := plans.Load(md); ok {
		return p.(*msgPlan)
	}
	if p, ok := building[md]; ok {
		return p
	}
	p := &msgPlan{md: md}
	building[md] = p
	fields := md.Fields()
	switch fn := md.FullName(); {
	case fn == timestampName:
		p.wkt, p.f1, p.f2 = wktTimestamp, fields.ByNumber(1), fields.ByNumber(2)
	case fn == structName:
		p.wkt, p.f1 = wktStruct, fields.ByNumber(1)
		p.value = buildPlan(p.f1.MapValue().Message(), building)
	case fn == valueName:
		p.wkt = wktValue
		for n := valueNullField; n <= valueListField; n++ {
			p.members[n] = fields.ByNumber(protoreflect.FieldNumber(n))
		}
		p.structPlan = buildPlan(p.members[valueStructField].Message(), building)
		p.listPlan = buildPlan(p.members[valueListField].Message(), building)
	case fn == listValueName:
		p.wkt, p.f1 = wktListValue, fields.ByNumber(1)
		p.value = buildPlan(p.f1.Message(), building)
	case isWrapper(fn):
		p.wkt, p.f1 = wktWrapper, fields.ByNumber(1)
		p.wrapped = scalarSpec{kind: p.f1.Kind(), enum: p.f1.Enum()}
	case fn.Parent() == "google.protobuf":
		p.wkt = wktOther
	}
	// Every message, a well-known one at the top level included, is also decoded as an object of its fields.
	p.fields = make([]fieldPlan, fields.Len())
	p.words = (fields.Len() + 63) / 64
	for i := range p.fields {
		fd := fields.Get(i)
		fp := &p.fields[i]
		fp.fd = fd
		el := fd
		switch {
		case fd.IsMap():
			fp.shape, fp.keyKind, el = shapeMap, fd.MapKey().Kind(), fd.MapValue()
		case fd.IsList():
			fp.shape = shapeList
		}
		fp.holdsValue = holdsValue(el)
		if isMessage(el) {
			fp.msg = buildPlan(el.Message(), building)
		} else {
			fp.sc = scalarSpec{kind: el.Kind(), enum: el.Enum(),
				id: el.Kind() == protoreflect.StringKind && !fd.IsList() && !fd.IsMap() && strings.HasSuffix(api.WireName(fd), "_id")}
		}
	}
	ix := indexOf(md)
	p.lay = protolayout.Of(md)
	p.byKey = make(map[string]*keyRef, len(ix.byKey))
	p.keys = make([]keyRef, 0, len(ix.byKey))
	for k, ent := range ix.byKey {
		ref := keyRef{id: len(p.keys), field: ent.fd.Index(), alias: ent.alias, key: k, name: nameID(k)}
		if len(k) >= 8 {
			ref.head, ref.tail = binary.LittleEndian.Uint64([]byte(k)), binary.LittleEndian.Uint64([]byte(k[len(k)-8:]))
		}
		p.keys = append(p.keys, ref)
		p.byKey[k] = &p.keys[len(p.keys)-1]
	}
	p.next = make([]atomic.Int32, len(p.keys)+1)
	return p
}

// link sets what depends on the layouts of the plans p reaches (complete once the graph is built).
func (p *msgPlan) link() {
	if p.lay == nil {
		return
	}
	p.timestamppb = p.lay.Type == reflect.TypeFor[*timestamppb.Timestamp]()
	for i := range p.fields {
		fp, ff := &p.fields[i], &p.lay.Fields[i]
		if (ff.Op == protolayout.OpMsg || ff.Op == protolayout.OpMsgs) && fp.msg != nil && fp.msg.lay != nil {
			fp.direct = fp.msg.lay.Type == reflect.TypeOf(ff.MT.Zero().Interface())
		}
	}
}

// keyNames numbers the keys of every plan, so that a step of a mismatch's path holds a number.
var keyNames struct {
	sync.RWMutex
	list []string
	ids  map[string]int
}

// nameID returns the id of a key in keyNames, adding it if needed.
func nameID(k string) int {
	keyNames.Lock()
	defer keyNames.Unlock()
	if id, ok := keyNames.ids[k]; ok {
		return id
	}
	if keyNames.ids == nil {
		keyNames.ids = map[string]int{}
	}
	keyNames.ids[k] = len(keyNames.list)
	keyNames.list = append(keyNames.list, k)
	return len(keyNames.list) - 1
}

// keyName returns the key of an id from nameID.
func keyName(id int) string {
	keyNames.RLock()
	defer keyNames.RUnlock()
	return keyNames.list[id]
}

// holdsValue reports whether fd holds google.protobuf.Value, where null is a value of its own.
func holdsValue(fd protoreflect.FieldDescriptor) bool {
	return isMessage(fd) && fd.Message().FullName() == valueName
}
