package codec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/protolayout"
)

// maxMismatches bounds how many skipped values a MismatchError lists; the rest are only counted.
const maxMismatches = 100

// FieldMismatch is one response value that did not fit its field and was skipped.
type FieldMismatch struct {
	// Path locates the value in the JSON document, e.g. "instance_set[3].vcpus_current".
	Path string
	// Reason says why it did not fit, e.g. `want int32, got a JSON object`.
	Reason string
}

// MismatchError reports response values that Decode skipped because they could not be made to fit
// their fields. Everything else was decoded, so callers treat it as a warning: the message is usable.
type MismatchError struct {
	// Fields lists the skipped values, sorted by path; at most 100 are listed.
	Fields []FieldMismatch
	// Omitted counts further skipped values that are not listed.
	Omitted int
}

// Error summarises the skipped values (at most five of them).
func (e *MismatchError) Error() string {
	var b strings.Builder
	total := len(e.Fields) + e.Omitted
	fmt.Fprintf(&b, "codec: %d response value(s) did not fit their fields and were skipped: ", total)
	for i, f := range e.Fields {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", total-5)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Path + ": " + f.Reason)
	}
	return b.String()
}

// Errors of Decode and ReadAnswer for a body that is not a JSON object at all; any other plain error
// means malformed JSON.
var (
	// ErrEmptyBody is returned for a body that is empty or only whitespace.
	ErrEmptyBody = errors.New("codec: response body is empty")
	// ErrNotObject is wrapped by the error for a body that is valid JSON but not an object.
	ErrNotObject = errors.New("not a JSON object")
)

// Answer is the envelope of a QingCloud answer: the raw JSON text of its top-level ret_code and
// message members (nil when absent; the last one when repeated; keys matched like encoding/json, case
// insensitively). Both alias the decoded data.
type Answer struct {
	RetCode []byte
	Message []byte
}

// Decode fills msg from a QingCloud JSON response body; msg is reset first. It is tolerant:
//
//   - JSON keys are matched to fields by wire name (also by proto and JSON name); unknown keys are ignored;
//   - null, and "" for a non-string field, leave the field unset;
//   - a number into a string field becomes its text, an object or list its compact JSON text, except
//     that a one-element list of a string into a singular *_id field (job_id) is that string;
//   - a numeric string into a numeric field is parsed, as is an integral float ("5.0", "1e3") into an
//     integer field; true/false become 1/0 there;
//   - 0, 1, "0", "1", "true", "false" (and true/false) fill a bool;
//   - timestamps take RFC 3339 with or without fractional seconds and offset (also with a space for
//     "T", and without a zone, read as UTC);
//   - Struct takes an object, ListValue any JSON (a non-list becomes a one-element list), Value any
//     JSON; a message, Struct or map field also takes a string holding a JSON object;
//   - a single value where a list is expected is read as a one-element list;
//   - a key given twice counts once, the last time (and a wire name over an alias of the same field).
//
// Values that cannot be made to fit (an object into an int, an int32 overflow, an unparsable timestamp)
// are skipped; after everything else is filled Decode returns a *MismatchError listing them.
// Malformed JSON, trailing data, or a top level that is not an object is a plain error (msg is then
// left empty).
//
// Decode reads the body once, filling msg as it goes, with a plan of the message type worked out on
// first use (see planOf). Short strings, the values of optional scalars, lists of strings and the
// messages of generated types are made in shared chunks of memory (protolayout.Slab), a few
// allocations for a page instead of one per value; a value kept after the message is dropped keeps
// its chunk (at most 4 KiB) alive, and a kept message also what its chunk's other messages point
// to, never data.
func Decode(data []byte, msg proto.Message) error {
	if msg == nil {
		return errors.New("codec: Decode into a nil message")
	}
	_, err := ReadAnswer(data, msg)
	return err
}

// ReadAnswer is Decode that also returns the answer's top-level ret_code and message, read in the same
// pass. With a nil msg it only checks that data is one JSON object and reads those two members. A
// *MismatchError comes with a complete Answer.
func ReadAnswer(data []byte, msg proto.Message) (Answer, error) {
	var m protoreflect.Message
	var p *msgPlan
	if msg != nil {
		m = msg.ProtoReflect()
		if !m.IsValid() {
			return Answer{}, errors.New("codec: Decode into a nil message pointer")
		}
		p = planOf(m.Descriptor())
	}
	var ans Answer
	d := decoder{s: scanner{data: data}, answer: &ans}
	s := &d.s
	s.ws()
	if s.pos == len(data) {
		return Answer{}, ErrEmptyBody
	}
	if s.peek() != '{' {
		v, err := s.value()
		if err != nil {
			return Answer{}, fmt.Errorf("codec: response is not valid JSON: %w", err)
		}
		if s.ws(); s.pos != len(data) {
			return Answer{}, errTrailing
		}
		return Answer{}, fmt.Errorf("codec: response is %s, %w", describe(&v), ErrNotObject)
	}
	if m != nil {
		proto.Reset(msg)
	}
	err := d.object(p, target{m: m})
	if err == nil {
		if s.ws(); s.pos != len(data) {
			err = errTrailing
		}
	} else {
		err = fmt.Errorf("codec: response is not valid JSON: %w", err)
	}
	if err != nil {
		if m != nil {
			proto.Reset(msg)
		}
		return Answer{}, err
	}
	if mm := d.result(); mm != nil {
		return ans, mm
	}
	return ans, nil
}

var errTrailing = errors.New("codec: response has data after the JSON value")

// decoder fills messages from a scanner following their plans, and collects mismatches.
type decoder struct {
	s scanner

	mismatches []FieldMismatch // a dead one (taken back) has an empty Reason
	dead       int
	omitted    int
	// ranges remembers which mismatches each member of the objects being decoded recorded, so that a
	// repeated key can take back those of its earlier value; only members with mismatches are listed.
	ranges []mismatchRange
	// steps is the path to the value being decoded, rendered only when a mismatch is recorded; keys
	// holds the keys of its map and Struct steps.
	steps []step
	keys  []string
	// answer receives ret_code and message of the top-level object; nil once it was entered.
	answer *Answer
	// slab holds the values of the proto3 optional scalars this decode sets, its messages of generated
	// types, and its lists of strings.
	slab protolayout.Slab
	// ptrs and strs collect the elements of the lists being read (nested lists above their parents'),
	// so that each list is made once, at its length.
	ptrs []unsafe.Pointer
	strs []string
}

// target is a message being filled: the address of its struct when its plan's layout covers its Go
// type (m is then made only if a field needs protoreflect), otherwise m.
type target struct {
	m    protoreflect.Message
	base unsafe.Pointer
}

// msg returns the target as a protoreflect.Message.
func (t *target) msg(p *msgPlan) protoreflect.Message {
	if t.m == nil {
		t.m = p.lay.Message(t.base)
	}
	return t.m
}

// mismatchRange is the mismatches recorded by one member of an object.
type mismatchRange struct {
	field      int    // field index, or -1 for a key of a map or Struct (then key)
	key        string //
	start, end int    // d.mismatches[start:end]
	omitted    int    // how many more were only counted
}

// step is one step of the path to the value being decoded. It holds no pointer, so that pushing it
// costs no write barrier: n is the index of an indexElem, the name id of a field's key (keyName), or
// for a dynamic key (of a map or a Struct) its index in decoder.keys.
type step struct {
	kind    pathKind
	dynamic bool
	n       int
}

// pushField, pushIndex and pushKey add a step to the path; pop takes the last one off.
func (d *decoder) pushField(name int) { d.steps = append(d.steps, step{kind: fieldElem, n: name}) }
func (d *decoder) pushIndex(i int)    { d.steps = append(d.steps, step{kind: indexElem, n: i}) }

func (d *decoder) pushKey(kind pathKind, key string) {
	d.keys = append(d.keys, key)
	d.steps = append(d.steps, step{kind: kind, dynamic: true, n: len(d.keys) - 1})
}

func (d *decoder) pop() {
	if d.steps[len(d.steps)-1].dynamic {
		d.keys = d.keys[:len(d.keys)-1]
	}
	d.steps = d.steps[:len(d.steps)-1]
}

// path renders the current path, e.g. instance_set[3].eip.bandwidth or role_count["master"].
func (d *decoder) path() string {
	var b strings.Builder
	for _, s := range d.steps {
		key := ""
		switch {
		case s.kind == indexElem:
		case s.dynamic:
			key = d.keys[s.n]
		default:
			key = keyName(s.n)
		}
		switch s.kind {
		case indexElem:
			b.WriteString("[" + strconv.Itoa(s.n) + "]")
		case mapKeyElem:
			b.WriteString("[" + strconv.Quote(key) + "]")
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(key)
		}
	}
	return b.String()
}

// skip records a value that did not fit.
func (d *decoder) skip(reason string) {
	if len(d.mismatches)-d.dead >= maxMismatches {
		d.omitted++
		return
	}
	d.mismatches = append(d.mismatches, FieldMismatch{Path: d.path(), Reason: reason})
}

// mark notes where a member's mismatches start; track lists them once the member is done.
func (d *decoder) mark() (int, int) { return len(d.mismatches), d.omitted }

func (d *decoder) track(field int, key string, start, omitted int) {
	if len(d.mismatches) != start || d.omitted != omitted {
		d.ranges = append(d.ranges, mismatchRange{field: field, key: key, start: start, end: len(d.mismatches), omitted: d.omitted - omitted})
	}
}

// forget takes back the mismatches of earlier values of a member of the current object (whose
// ranges start at base).
func (d *decoder) forget(base, field int, key string) {
	for i := base; i < len(d.ranges); i++ {
		r := &d.ranges[i]
		if r.field != field || r.key != key {
			continue
		}
		for j := r.start; j < r.end; j++ {
			if d.mismatches[j].Reason != "" {
				d.mismatches[j] = FieldMismatch{}
				d.dead++
			}
		}
		d.omitted -= r.omitted
		r.field, r.key = -2, ""
	}
}

// result returns the recorded mismatches, sorted by path, or nil.
func (d *decoder) result() *MismatchError {
	if d.dead > 0 {
		d.mismatches = slices.DeleteFunc(d.mismatches, func(f FieldMismatch) bool { return f.Reason == "" })
	}
	if len(d.mismatches) == 0 && d.omitted == 0 {
		return nil
	}
	slices.SortFunc(d.mismatches, func(a, b FieldMismatch) int { return strings.Compare(a.Path, b.Path) })
	return &MismatchError{Fields: d.mismatches, Omitted: d.omitted}
}

// object fills m (of plan p) from the object at the read position. With a nil plan it only reads the
// object (and the answer's members).
func (d *decoder) object(p *msgPlan, t target) error {
	s := &d.s
	empty, err := s.openObject()
	if err != nil || empty {
		d.answer = nil
		return err
	}
	ans := d.answer
	d.answer = nil
	// seen and wire are sets of fields: given at all, given by wire name.
	var sets [4]uint64
	var seen, wire []uint64
	if p != nil {
		if p.words <= 2 {
			seen, wire = sets[:p.words], sets[2:2+p.words]
		} else {
			buf := make([]uint64, 2*p.words)
			seen, wire = buf[:p.words], buf[p.words:]
		}
	}
	var lay *protolayout.Layout
	if t.base != nil {
		lay = p.lay
	} else {
		lay, t.base = p.structOf(t.m)
	}
	base := t.base
	rbase := len(d.ranges)
	prev := 0 // the slot of p.next predicting the next key
	for {
		raw, fl, err := s.key()
		if err != nil {
			return err
		}
		start := s.pos
		var ref *keyRef
		ok := false
		if p != nil {
			g := p.next[prev].Load()
			switch {
			case g != 0 && fl == 0 && p.keys[g-1].is(raw):
				ref, ok = &p.keys[g-1], true
			case fl&strEscaped == 0:
				ref, ok = p.byKey[string(raw)]
			default:
				ref, ok = p.byKey[unquote(raw)]
			}
			if ok {
				if g != int32(ref.id+1) {
					p.next[prev].Store(int32(ref.id + 1))
				}
				prev = ref.id + 1
			}
		}
		switch {
		case !ok || ref.alias && wire[ref.field/64]&(1<<(ref.field%64)) != 0:
			err = s.skip()
		default:
			i := ref.field
			fp := &p.fields[i]
			if seen[i/64]&(1<<(i%64)) != 0 {
				// The key (or another of the field's keys) was given before: the last one counts.
				d.forget(rbase, i, "")
				t.msg(p).Clear(fp.fd)
			}
			seen[i/64] |= 1 << (i % 64)
			if !ref.alias {
				wire[i/64] |= 1 << (i % 64)
			}
			ms, om := d.mark()
			d.pushField(ref.name)
			if lay != nil && lay.Fields[i].Op != protolayout.OpReflect {
				err = d.fastField(fp, &lay.Fields[i], unsafe.Add(base, lay.Fields[i].Off))
			} else {
				err = d.field(fp, t.msg(p))
			}
			d.pop()
			d.track(i, "", ms, om)
		}
		if err != nil {
			return err
		}
		if ans != nil {
			ans.note(raw, fl, s.data[start:s.pos])
		}
		end, err := s.next('}', "after object key:value pair")
		if err != nil {
			return err
		}
		if end {
			break
		}
	}
	s.leave()
	d.ranges = d.ranges[:rbase]
	return nil
}

// note keeps the value of a top-level member if it is ret_code or message.
func (a *Answer) note(raw []byte, fl strFlags, value []byte) {
	key := raw
	if fl&strEscaped != 0 {
		key = []byte(unquote(raw))
	}
	switch {
	case string(key) == "ret_code" || bytes.EqualFold(key, []byte("ret_code")):
		a.RetCode = value
	case string(key) == "message" || bytes.EqualFold(key, []byte("message")):
		a.Message = value
	}
}

// field fills one field of m from the value at the read position.
func (d *decoder) field(fp *fieldPlan, m protoreflect.Message) error {
	s := &d.s
	if s.peek() == 'n' {
		return s.literal("null") // unset
	}
	switch fp.shape {
	case shapeMap:
		_, err := d.objectOr(func() error { return d.mapObject(fp, m) })
		return err
	case shapeList:
		return d.listField(fp, m)
	}
	if fp.msg != nil {
		fresh := m.NewField(fp.fd)
		ok, err := d.message(fp.msg, target{m: fresh.Message()})
		if ok {
			m.Set(fp.fd, fresh)
		}
		return err
	}
	v, err := s.value()
	if err != nil {
		return err
	}
	if val, ok := d.scalar(&fp.sc, &v); ok {
		m.Set(fp.fd, val)
	}
	return nil
}

// listField fills a repeated field from an array (or a single value, as a one-element list).
func (d *decoder) listField(fp *fieldPlan, m protoreflect.Message) error {
	l := m.Mutable(fp.fd).List()
	err := d.list(fp.holdsValue, func() error { return d.element(fp, l) })
	if l.Len() == 0 {
		m.Clear(fp.fd)
	}
	return err
}

// list reads an array, or a single value as a one-element list ("" is unset), calling elem at each
// element with its index on the path; null elements are dropped unless keepNull.
func (d *decoder) list(keepNull bool, elem func() error) error {
	s := &d.s
	if s.peek() != '[' {
		if s.pos+1 < len(s.data) && s.data[s.pos] == '"' && s.data[s.pos+1] == '"' {
			s.pos += 2
			return nil
		}
		d.pushIndex(0)
		err := elem()
		d.pop()
		return err
	}
	empty, err := s.openArray()
	if err != nil || empty {
		return err
	}
	for i := 0; ; i++ {
		if s.peek() == 'n' && !keepNull {
			err = s.literal("null")
		} else {
			d.pushIndex(i)
			err = elem()
			d.pop()
		}
		if err != nil {
			return err
		}
		end, err := s.next(']', "after array element")
		if err != nil {
			return err
		}
		if end {
			break
		}
	}
	s.leave()
	return nil
}

// fastField fills a field of a generated message by writing it at p (see layout).
func (d *decoder) fastField(fp *fieldPlan, ff *protolayout.Field, p unsafe.Pointer) error {
	s := &d.s
	if s.peek() == 'n' {
		return s.literal("null") // unset
	}
	switch ff.Op {
	case protolayout.OpMsg:
		t, ptr := d.newMessage(fp, ff)
		ok, err := d.message(fp.msg, t)
		if ok {
			*(*unsafe.Pointer)(p) = ptr
		}
		return err
	case protolayout.OpMsgs:
		mark := len(d.ptrs)
		err := d.list(fp.holdsValue, func() error {
			t, ptr := d.newMessage(fp, ff)
			ok, err := d.message(fp.msg, t)
			if ok {
				d.ptrs = append(d.ptrs, ptr)
			}
			return err
		})
		if n := len(d.ptrs) - mark; n > 0 && err == nil {
			list := (*[]unsafe.Pointer)(p)
			if len(*list) == 0 {
				*list = d.slab.Pointers(n)
				copy(*list, d.ptrs[mark:])
			} else {
				*list = append(*list, d.ptrs[mark:]...)
			}
		}
		d.ptrs = d.ptrs[:mark]
		return err
	case protolayout.OpStrings:
		mark := len(d.strs)
		err := d.list(false, func() error {
			v, err := s.value()
			if err != nil {
				return err
			}
			if val, ok := d.scalar(&fp.sc, &v); ok {
				d.strs = append(d.strs, val.String())
			}
			return nil
		})
		if n := len(d.strs) - mark; n > 0 && err == nil {
			list := (*[]string)(p)
			if len(*list) == 0 {
				*list = d.slab.Strings(n)
				copy(*list, d.strs[mark:])
			} else {
				*list = append(*list, d.strs[mark:]...)
			}
		}
		d.strs = d.strs[:mark]
		return err
	}
	var v jval
	if s.peek() == '"' {
		raw, fl, err := s.str()
		if err != nil {
			return err
		}
		if fp.sc.kind == protoreflect.StringKind && plain(raw, fl) { // most values: what scalar does first
			d.slab.Store(ff.Op, p, protoreflect.ValueOfString(d.slab.String(raw)))
			return nil
		}
		v = jval{kind: jsonString, raw: raw, fl: fl}
	} else {
		var err error
		if v, err = s.value(); err != nil {
			return err
		}
	}
	if val, ok := d.scalar(&fp.sc, &v); ok {
		d.slab.Store(ff.Op, p, val)
	}
	return nil
}

// newMessage makes a message for an OpMsg or OpMsgs field: from the slab when the plan's layout is
// the field's Go type (see fieldPlan.direct), else through its MessageType. ptr is its struct's address.
func (d *decoder) newMessage(fp *fieldPlan, ff *protolayout.Field) (t target, ptr unsafe.Pointer) {
	if fp.direct {
		ptr = d.slab.New(fp.msg.lay)
		return target{base: ptr}, ptr
	}
	fresh := ff.MT.New()
	return target{m: fresh}, protolayout.Address(fresh)
}

// element appends one value to a list.
func (d *decoder) element(fp *fieldPlan, l protoreflect.List) error {
	if fp.msg != nil {
		fresh := l.NewElement()
		ok, err := d.message(fp.msg, target{m: fresh.Message()})
		if ok {
			l.Append(fresh)
		}
		return err
	}
	v, err := d.s.value()
	if err != nil {
		return err
	}
	if val, ok := d.scalar(&fp.sc, &v); ok {
		l.Append(val)
	}
	return nil
}

// mapObject fills a map field from the object at the read position.
func (d *decoder) mapObject(fp *fieldPlan, m protoreflect.Message) error {
	s := &d.s
	empty, err := s.openObject()
	if err != nil || empty {
		return err
	}
	mp := m.Mutable(fp.fd).Map()
	base := len(d.ranges)
	for {
		raw, fl, err := s.key()
		if err != nil {
			return err
		}
		k := strValue(raw, fl)
		if len(d.ranges) > base {
			d.forget(base, -1, k)
		}
		ms, om := d.mark()
		d.pushKey(mapKeyElem, k)
		err = d.mapEntry(fp, mp, k)
		d.pop()
		d.track(-1, k, ms, om)
		if err != nil {
			return err
		}
		end, err := s.next('}', "after object key:value pair")
		if err != nil {
			return err
		}
		if end {
			break
		}
	}
	s.leave()
	d.ranges = d.ranges[:base]
	if mp.Len() == 0 {
		m.Clear(fp.fd)
	}
	return nil
}

// mapEntry sets one entry of a map from the value at the read position.
func (d *decoder) mapEntry(fp *fieldPlan, mp protoreflect.Map, k string) error {
	s := &d.s
	key, reason := mapKey(fp.keyKind, k)
	if reason != "" {
		d.skip(reason)
		return s.skip()
	}
	if mp.Has(key) {
		mp.Clear(key) // the key was given before: the last one counts
	}
	if s.peek() == 'n' && !fp.holdsValue {
		return s.literal("null")
	}
	if fp.msg != nil {
		fresh := mp.NewValue()
		ok, err := d.message(fp.msg, target{m: fresh.Message()})
		if ok {
			mp.Set(key, fresh)
		}
		return err
	}
	v, err := s.value()
	if err != nil {
		return err
	}
	if val, ok := d.scalar(&fp.sc, &v); ok {
		mp.Set(key, val)
	}
	return nil
}

// objectOr reads a value that should be an object: fill reads an object, also one given as a string
// holding a JSON object (QingCloud sends some objects as JSON text); "" is unset, anything else a
// mismatch. It reports whether fill ran.
func (d *decoder) objectOr(fill func() error) (bool, error) {
	s := &d.s
	switch s.peek() {
	case '{':
		return true, fill()
	case '"':
		raw, fl, err := s.str()
		if err != nil || len(raw) == 0 {
			return false, err
		}
		text := strValue(raw, fl)
		if t := strings.TrimSpace(text); strings.HasPrefix(t, "{") {
			doc := []byte(t)
			check := scanner{data: doc}
			if check.skip() == nil && check.pos == len(doc) {
				saved := d.s
				d.s = scanner{data: doc}
				err := fill()
				d.s = saved
				return err == nil, err
			}
		}
		d.skip(fmt.Sprintf("want an object, got the string %q", clip(text)))
		return false, nil
	}
	v, err := s.value()
	if err != nil {
		return false, err
	}
	d.skip("want an object, got " + describe(&v))
	return false, nil
}

// message fills t (of plan p) from the value at the read position and reports whether t should be
// stored. null never reaches it except for google.protobuf.Value.
func (d *decoder) message(p *msgPlan, t target) (bool, error) {
	s := &d.s
	switch p.wkt {
	case wktNone:
		return d.objectOr(func() error { return d.object(p, t) })
	case wktTimestamp:
		return d.timestamp(p, t)
	}
	m := t.msg(p)
	switch p.wkt {
	case wktStruct:
		return d.objectOr(func() error { return d.structObject(p, m) })
	case wktValue:
		return d.value(p, m)
	case wktListValue:
		if s.peek() == '[' {
			return true, d.listValue(p, m)
		}
		// A single value is a one-element list.
		l := m.Mutable(p.f1).List()
		el := l.NewElement()
		d.pushIndex(0)
		ok, err := d.value(p.value, el.Message())
		d.pop()
		if ok {
			l.Append(el)
		}
		return true, err
	case wktWrapper:
		v, err := s.value()
		if err != nil {
			return false, err
		}
		val, reason := scalarValue(&p.wrapped, &v)
		switch reason {
		case "":
			m.Set(p.f1, val)
			return true, nil
		case unset:
		default:
			d.skip(reason)
		}
		return false, nil
	case wktOther:
		start := s.pos
		if err := s.skip(); err != nil {
			return false, err
		}
		var x any
		err := json.Unmarshal(s.data[start:s.pos], &x)
		var b []byte
		if err == nil {
			b, err = json.Marshal(x)
		}
		if err == nil {
			err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, m.Interface())
		}
		if err != nil {
			d.skip(fmt.Sprintf("not a valid %s: %v", p.md.Name(), err))
			return false, nil
		}
		return true, nil
	}
	return false, nil
}

// timestamp fills a google.protobuf.Timestamp (plan p) from the string at the read position.
func (d *decoder) timestamp(p *msgPlan, t target) (bool, error) {
	v, err := d.s.value()
	if err != nil {
		return false, err
	}
	if v.kind != jsonString {
		d.skip("want an RFC 3339 timestamp string, got " + describe(&v))
		return false, nil
	}
	var tm time.Time
	if utc, ok := utcSeconds(v.raw); ok && v.fl == 0 {
		tm = utc
	} else {
		text := v.text()
		if strings.TrimSpace(text) == "" {
			return false, nil
		}
		var perr error
		if tm, perr = parseTime(text); perr != nil {
			d.skip(perr.Error())
			return false, nil
		}
	}
	var ts *timestamppb.Timestamp
	if t.base != nil && p.timestamppb {
		ts = (*timestamppb.Timestamp)(t.base)
	} else if x, ok := t.msg(p).Interface().(*timestamppb.Timestamp); ok {
		ts = x
	}
	if ts != nil {
		ts.Seconds, ts.Nanos = tm.Unix(), int32(tm.Nanosecond())
	} else {
		t.m.Set(p.f1, protoreflect.ValueOfInt64(tm.Unix()))
		t.m.Set(p.f2, protoreflect.ValueOfInt32(int32(tm.Nanosecond())))
	}
	return true, nil
}

// structObject fills a google.protobuf.Struct from the object at the read position.
func (d *decoder) structObject(p *msgPlan, m protoreflect.Message) error {
	s := &d.s
	fields := m.Mutable(p.f1).Map()
	empty, err := s.openObject()
	if err != nil || empty {
		return err
	}
	base := len(d.ranges)
	for {
		raw, fl, err := s.key()
		if err != nil {
			return err
		}
		k := strValue(raw, fl)
		key := protoreflect.ValueOfString(k).MapKey()
		if len(d.ranges) > base {
			d.forget(base, -1, k)
		}
		fields.Clear(key) // a key given twice: the last one counts
		ms, om := d.mark()
		val := fields.NewValue()
		d.pushKey(fieldElem, k)
		ok, err := d.value(p.value, val.Message())
		d.pop()
		d.track(-1, k, ms, om)
		if err != nil {
			return err
		}
		if ok {
			fields.Set(key, val)
		}
		end, err := s.next('}', "after object key:value pair")
		if err != nil {
			return err
		}
		if end {
			break
		}
	}
	s.leave()
	d.ranges = d.ranges[:base]
	return nil
}

// listValue fills a google.protobuf.ListValue from the array at the read position.
func (d *decoder) listValue(p *msgPlan, m protoreflect.Message) error {
	s := &d.s
	l := m.Mutable(p.f1).List()
	empty, err := s.openArray()
	if err != nil || empty {
		return err
	}
	for i := 0; ; i++ {
		el := l.NewElement()
		d.pushIndex(i)
		ok, err := d.value(p.value, el.Message())
		d.pop()
		if err != nil {
			return err
		}
		if ok {
			l.Append(el)
		}
		end, err := s.next(']', "after array element")
		if err != nil {
			return err
		}
		if end {
			break
		}
	}
	s.leave()
	return nil
}

// value fills a google.protobuf.Value (plan p) from any JSON value, null included.
func (d *decoder) value(p *msgPlan, m protoreflect.Message) (bool, error) {
	s := &d.s
	switch s.peek() {
	case '{':
		fd := p.members[valueStructField]
		sv := m.NewField(fd)
		err := d.structObject(p.structPlan, sv.Message())
		m.Set(fd, sv)
		return true, err
	case '[':
		fd := p.members[valueListField]
		lv := m.NewField(fd)
		err := d.listValue(p.listPlan, lv.Message())
		m.Set(fd, lv)
		return true, err
	}
	v, err := s.value()
	if err != nil {
		return false, err
	}
	switch v.kind {
	case jsonNull:
		m.Set(p.members[valueNullField], protoreflect.ValueOfEnum(0))
	case jsonBool:
		m.Set(p.members[valueBoolField], protoreflect.ValueOfBool(v.b))
	case jsonString:
		m.Set(p.members[valueStringField], protoreflect.ValueOfString(v.text()))
	default:
		f, err := strconv.ParseFloat(string(v.raw), 64)
		if err != nil {
			d.skip(fmt.Sprintf("number %s does not fit a double", clip(string(v.raw))))
			return false, nil
		}
		m.Set(p.members[valueNumberField], protoreflect.ValueOfFloat64(f))
	}
	return true, nil
}

// scalar converts v for a non-message field, recording a mismatch when it does not fit.
func (d *decoder) scalar(sc *scalarSpec, v *jval) (protoreflect.Value, bool) {
	if sc.kind == protoreflect.StringKind && v.kind == jsonString && plain(v.raw, v.fl) {
		return protoreflect.ValueOfString(d.slab.String(v.raw)), true // most values: no escapes
	}
	val, reason := scalarValue(sc, v)
	switch reason {
	case "":
		return val, true
	case unset:
	default:
		d.skip(reason)
	}
	return protoreflect.Value{}, false
}

// unset is the scalarValue reason for values that mean "not set" (null, "" for a non-string field).
const unset = "\x00unset"

// scalarValue converts v for a non-message field. The reason is "" on success, unset when v means
// "not set", and otherwise says why v does not fit.
func scalarValue(sc *scalarSpec, v *jval) (protoreflect.Value, string) {
	switch sc.kind {
	case protoreflect.StringKind:
		switch v.kind {
		case jsonString:
			return protoreflect.ValueOfString(v.text()), ""
		case jsonNumber:
			return protoreflect.ValueOfString(string(v.raw)), ""
		case jsonBool:
			return protoreflect.ValueOfString(strconv.FormatBool(v.b)), ""
		case jsonObject, jsonArray:
			if sc.id && v.kind == jsonArray {
				var one []string
				if json.Unmarshal(v.raw, &one) == nil && len(one) == 1 {
					return protoreflect.ValueOfString(one[0]), ""
				}
			}
			text, err := compactText(v.raw)
			if err != nil {
				return protoreflect.Value{}, "cannot render the value as text: " + err.Error()
			}
			return protoreflect.ValueOfString(text), ""
		}
	case protoreflect.BoolKind:
		return boolValue(v)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, reason := intValue(v, 32, sc.kind)
		return protoreflect.ValueOfInt32(int32(n)), reason
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, reason := intValue(v, 64, sc.kind)
		return protoreflect.ValueOfInt64(n), reason
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, reason := uintValue(v, 32, sc.kind)
		return protoreflect.ValueOfUint32(uint32(n)), reason
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, reason := uintValue(v, 64, sc.kind)
		return protoreflect.ValueOfUint64(n), reason
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		return floatValue(v, sc.kind)
	case protoreflect.BytesKind:
		if v.kind != jsonString {
			return protoreflect.Value{}, "want a base64 string, got " + describe(v)
		}
		s := v.text()
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(s); err == nil {
				return protoreflect.ValueOfBytes(b), ""
			}
		}
		return protoreflect.Value{}, fmt.Sprintf("%q is not base64", clip(s))
	case protoreflect.EnumKind:
		if v.kind == jsonString {
			if ev := sc.enum.Values().ByName(protoreflect.Name(v.text())); ev != nil {
				return protoreflect.ValueOfEnum(ev.Number()), ""
			}
		}
		n, reason := intValue(v, 32, sc.kind)
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), reason
	}
	return protoreflect.Value{}, fmt.Sprintf("want %s, got %s", sc.kind, describe(v))
}

// numberText returns the text of a JSON number or string, reporting unset for "".
func numberText(v *jval, kind protoreflect.Kind) (string, string) {
	switch v.kind {
	case jsonNumber:
		return string(v.raw), ""
	case jsonString:
		s := strings.TrimSpace(v.text())
		if s == "" {
			return "", unset
		}
		return s, ""
	}
	return "", fmt.Sprintf("want %s, got %s", kind, describe(v))
}

// smallInt parses the text of a JSON number that is a plain integer of at most 18 digits.
func smallInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// intValue converts v to a signed integer of the given size.
func intValue(v *jval, bits int, kind protoreflect.Kind) (int64, string) {
	switch v.kind {
	case jsonBool:
		if v.b {
			return 1, ""
		}
		return 0, ""
	case jsonNumber:
		if n, ok := smallInt(v.raw); ok && (bits == 64 || n == int64(int32(n))) {
			return n, ""
		}
	}
	s, reason := numberText(v, kind)
	if reason != "" {
		return 0, reason
	}
	n, err := strconv.ParseInt(s, 10, bits)
	if err == nil {
		return n, ""
	}
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Sprintf("%s overflows %s", clip(s), kind)
	}
	f, ferr := strconv.ParseFloat(s, 64)
	if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Sprintf("%q is not a number", clip(s))
	}
	if f != math.Trunc(f) {
		return 0, fmt.Sprintf("%s is not an integer", clip(s))
	}
	limit := math.Ldexp(1, bits-1)
	if f < -limit || f >= limit {
		return 0, fmt.Sprintf("%s overflows %s", clip(s), kind)
	}
	return int64(f), ""
}

// uintValue converts v to an unsigned integer of the given size.
func uintValue(v *jval, bits int, kind protoreflect.Kind) (uint64, string) {
	switch v.kind {
	case jsonBool:
		if v.b {
			return 1, ""
		}
		return 0, ""
	case jsonNumber:
		if n, ok := smallInt(v.raw); ok && n >= 0 && (bits == 64 || n == int64(uint32(n))) {
			return uint64(n), ""
		}
	}
	s, reason := numberText(v, kind)
	if reason != "" {
		return 0, reason
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err == nil {
		return n, ""
	}
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Sprintf("%s overflows %s", clip(s), kind)
	}
	f, ferr := strconv.ParseFloat(s, 64)
	if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Sprintf("%q is not a number", clip(s))
	}
	if f != math.Trunc(f) {
		return 0, fmt.Sprintf("%s is not an integer", clip(s))
	}
	if f < 0 || f >= math.Ldexp(1, bits) {
		return 0, fmt.Sprintf("%s overflows %s", clip(s), kind)
	}
	return uint64(f), ""
}

// floatValue converts v to a double or float.
func floatValue(v *jval, kind protoreflect.Kind) (protoreflect.Value, string) {
	s, reason := numberText(v, kind)
	if reason != "" {
		return protoreflect.Value{}, reason
	}
	bits := 64
	if kind == protoreflect.FloatKind {
		bits = 32
	}
	f, err := strconv.ParseFloat(s, bits)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) && !math.IsInf(f, 0) {
			// Underflow to zero or a denormal: close enough.
			err = nil
		} else if errors.Is(err, strconv.ErrRange) {
			return protoreflect.Value{}, fmt.Sprintf("%s overflows %s", clip(s), kind)
		} else {
			return protoreflect.Value{}, fmt.Sprintf("%q is not a number", clip(s))
		}
	}
	if bits == 32 {
		return protoreflect.ValueOfFloat32(float32(f)), ""
	}
	return protoreflect.ValueOfFloat64(f), ""
}

// boolValue converts true/false, 0/1 (numbers or strings) and "true"/"false" to a bool.
func boolValue(v *jval) (protoreflect.Value, string) {
	switch v.kind {
	case jsonBool:
		return protoreflect.ValueOfBool(v.b), ""
	case jsonNumber:
		switch f, err := strconv.ParseFloat(string(v.raw), 64); {
		case err == nil && f == 0:
			return protoreflect.ValueOfBool(false), ""
		case err == nil && f == 1:
			return protoreflect.ValueOfBool(true), ""
		}
		return protoreflect.Value{}, fmt.Sprintf("want a bool (0 or 1), got %s", clip(string(v.raw)))
	case jsonString:
		x := v.text()
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "":
			return protoreflect.Value{}, unset
		case "1", "true":
			return protoreflect.ValueOfBool(true), ""
		case "0", "false":
			return protoreflect.ValueOfBool(false), ""
		}
		return protoreflect.Value{}, fmt.Sprintf("want a bool, got %q", clip(x))
	}
	return protoreflect.Value{}, "want a bool, got " + describe(v)
}

// mapKey converts a JSON object key to a map key of the given kind.
func mapKey(kind protoreflect.Kind, k string) (protoreflect.MapKey, string) {
	if kind == protoreflect.StringKind {
		return protoreflect.ValueOfString(k).MapKey(), ""
	}
	v := jval{kind: jsonString, raw: []byte(k)} // already unescaped: read as it is
	switch kind {
	case protoreflect.BoolKind:
		b, reason := boolValue(&v)
		if reason != "" {
			return protoreflect.MapKey{}, keyReason(reason)
		}
		return b.MapKey(), ""
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, reason := intValue(&v, 32, kind)
		if reason != "" {
			return protoreflect.MapKey{}, keyReason(reason)
		}
		return protoreflect.ValueOfInt32(int32(n)).MapKey(), ""
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, reason := intValue(&v, 64, kind)
		if reason != "" {
			return protoreflect.MapKey{}, keyReason(reason)
		}
		return protoreflect.ValueOfInt64(n).MapKey(), ""
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, reason := uintValue(&v, 32, kind)
		if reason != "" {
			return protoreflect.MapKey{}, keyReason(reason)
		}
		return protoreflect.ValueOfUint32(uint32(n)).MapKey(), ""
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, reason := uintValue(&v, 64, kind)
		if reason != "" {
			return protoreflect.MapKey{}, keyReason(reason)
		}
		return protoreflect.ValueOfUint64(n).MapKey(), ""
	}
	return protoreflect.MapKey{}, fmt.Sprintf("map keys of kind %s are not supported", kind)
}

// compactText renders a raw JSON object or array as compact text (keys sorted, numbers as written,
// HTML characters not escaped).
func compactText(raw []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	return compactJSON(v)
}

// describe names the JSON type of v for messages.
func describe(v *jval) string {
	switch v.kind {
	case jsonNull:
		return "null"
	case jsonBool:
		return "a JSON bool"
	case jsonNumber:
		return "the number " + clip(string(v.raw))
	case jsonString:
		return fmt.Sprintf("the string %q", clip(v.text()))
	case jsonObject:
		return "a JSON object"
	}
	return "a JSON array"
}

// keyReason words a map-key conversion failure.
func keyReason(reason string) string {
	if reason == unset {
		return "empty map key"
	}
	return "map key: " + reason
}

// timeLayouts are tried in order; Go accepts fractional seconds after the seconds field even when the
// layout does not name them.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05",
}

// utcSeconds parses the form QingCloud uses, 2006-01-02T15:04:05Z, as parseTime does, without
// copying it; ok is false for any other text (which parseTime then reads).
func utcSeconds(b []byte) (t time.Time, ok bool) {
	if len(b) != 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[19] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	if year < 1 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	t = time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	if t.Day() != day { // past the month's last day: time.Parse rejects it
		return time.Time{}, false
	}
	return t, true
}

// parseTime parses a QingCloud timestamp; a value without a zone is UTC.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			if y := t.UTC().Year(); y < 1 || y > 9999 { // google.protobuf.Timestamp's range is in UTC
				break
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 timestamp", clip(s))
}

// compactJSON renders a decoded JSON value as compact text without HTML escaping.
func compactJSON(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// clip shortens untrusted text for an error message.
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// pathStep is one step of the path to a value.
type pathStep struct {
	kind  pathKind
	key   string
	index int
}

// pathKind tells how a pathStep is rendered.
type pathKind int

const (
	fieldElem  pathKind = iota // .key
	indexElem                  // [index]
	mapKeyElem                 // ["key"]
)
