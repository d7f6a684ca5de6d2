package emulator

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
)

// How an action is answered.
const (
	byHand        = "hand"        // a hand-written handler (ModeledActions)
	byStore       = "store"       // the generic store, reading or changing stored items
	byDescriptors = "descriptors" // the generic store, from the descriptors only (no stored item involved)
)

// answeredBy classifies one action of the spec: by a hand-written handler, by the generic store with
// state (it lists a stored kind, names stored items in its request, or creates stored items), or
// from the descriptors alone.
func answeredBy(sa *specAction) string {
	if _, ok := actions[sa.name]; ok {
		return byHand
	}
	if describeStoreKind(sa.name) != nil {
		return byStore
	}
	kinds := storeKinds()
	byParam := map[string]bool{}
	for _, k := range kinds {
		byParam[k.IDParam] = true
	}
	in := sa.in.Fields()
	for i := 0; i < in.Len(); i++ {
		fd := in.Get(i)
		name := api.WireName(fd)
		if fd.Kind() == protoreflect.StringKind && (byParam[name] || !fd.IsList() && kinds[name] != nil) {
			return byStore
		}
	}
	if isCreateVerb(verbOf(sa.name)) {
		out := sa.out.Fields()
		for i := 0; i < out.Len(); i++ {
			if fd := out.Get(i); kindOfIDField(kinds, fd) != nil || kindOfObjects(kinds, fd) != nil {
				return byStore
			}
		}
	}
	return byDescriptors
}

// serviceOf is the service of an action without its Service suffix ("Instance").
func serviceOf(action string) string {
	m := api.ByAction(action)
	return strings.TrimSuffix(string(m.Desc.Parent().Name()), "Service")
}

// terraformServices are the services of the families the official Terraform provider manages; every
// one of their actions must be answered with state.
var terraformServices = []string{"Eip", "Instance", "KeyPair", "LoadBalancer", "Router", "SecurityGroup",
	"Snapshot", "Tag", "Volume", "Vxnet"}

// TestConformanceTable classifies every action of the spec and checks that the families the
// Terraform provider manages have state (but for their monitors and documented exceptions). With
// EMULATOR_CONFORMANCE=1 it prints the table of docs/emulator.md's "Conformance by family".
func TestConformanceTable(t *testing.T) {
	type row struct {
		hand, store, desc int
		kinds             map[string]bool
		descOnly          []string
	}
	rows := map[string]*row{}
	for name, sa := range specActions() {
		svc := serviceOf(name)
		rw := rows[svc]
		if rw == nil {
			rw = &row{kinds: map[string]bool{}}
			rows[svc] = rw
		}
		switch answeredBy(sa) {
		case byHand:
			rw.hand++
		case byStore:
			rw.store++
		default:
			rw.desc++
			rw.descOnly = append(rw.descOnly, name)
		}
	}
	for _, k := range storeKinds() {
		svc := serviceOf(k.Action)
		if rows[svc] != nil {
			rows[svc].kinds[k.Name] = true
		}
	}
	for _, svc := range terraformServices {
		rw := rows[svc]
		if rw == nil {
			t.Errorf("service %s is not in the spec", svc)
			continue
		}
		for _, name := range rw.descOnly {
			if !strings.HasPrefix(name, "Get") || !strings.HasSuffix(name, "Monitor") {
				if !terraformStateless[name] {
					t.Errorf("%s (%s, managed by the Terraform provider) is answered without state", name, svc)
				}
			}
		}
	}
	if os.Getenv("EMULATOR_CONFORMANCE") != "1" {
		return
	}
	svcs := make([]string, 0, len(rows))
	for s := range rows {
		svcs = append(svcs, s)
	}
	sort.Strings(svcs)
	var b strings.Builder
	var th, ts, td int
	for _, s := range svcs {
		rw := rows[s]
		kinds := slices.Sorted(func(yield func(string) bool) {
			for k := range rw.kinds {
				if !yield(k) {
					return
				}
			}
		})
		sort.Strings(rw.descOnly)
		dash := func(l []string) string {
			if len(l) == 0 {
				return "—"
			}
			return strings.Join(l, ", ")
		}
		fmt.Fprintf(&b, "| %s | %d | %d / %d / %d | %s | %s |\n", s, rw.hand+rw.store+rw.desc, rw.hand, rw.store, rw.desc, dash(kinds), dash(rw.descOnly))
		th, ts, td = th+rw.hand, ts+rw.store, td+rw.desc
	}
	fmt.Fprintf(&b, "| **total** | %d | %d / %d / %d | | |\n", th+ts+td, th, ts, td)
	t.Log("\n" + b.String())
}

// terraformStateless are actions of the Terraform families that no state can answer better than the
// descriptors: they report on something the emulator does not model.
var terraformStateless = map[string]bool{
	"CreateBrokers":      true, // VNC brokers: a URL for a console the emulator does not have
	"GetVPNCerts":        true, // certificates of a VPN service the emulator does not run
	"DescribeImageUsers": true, // image sharing with other users: the emulator has one user per key
	// Router static entries (the entries of a VPN or DHCP static): the spec's Describe takes their ids
	// as one string, so they are not a kind the descriptors derive; the Terraform provider does not
	// manage them.
	"DeleteRouterStaticEntries":         true,
	"ModifyRouterStaticEntryAttributes": true,
}
