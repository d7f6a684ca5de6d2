package emulator_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/answers.golden from the emulator's answers")

const answersGolden = "testdata/answers.golden"

// TestAnswersGolden holds the emulator's answers byte for byte: in a reproducible world (seeded
// randomness, a fake clock) holding one resource of every kind with relations between them, every
// read-only action is answered (verbose too when it takes verbose), then every other action in name
// order, then every read-only action again while the jobs run and once they ended. The answers must
// equal testdata/answers.golden (written with -update from a version known to answer right), so a
// change of how answers are rendered can not change a byte of them.
func TestAnswersGolden(t *testing.T) {
	defer emulator.SeedRandomForTest(13)()
	f := newFixture(t, nil)
	reg := registryActions(t)
	kinds := map[string]api.ResourceKind{}
	var kindNames []string
	for _, k := range api.ResourceKinds() {
		if _, dup := kinds[k.Name]; !dup {
			kinds[k.Name] = k
			kindNames = append(kindNames, k.Name)
		}
	}
	slices.Sort(kindNames)
	world := &idTest{f: f, t: t, reg: reg, kinds: kinds, given: map[string]bool{}}
	for _, name := range kindNames {
		world.make(kinds[name])
	}
	inst, _ := makeModelled(f, "instance")
	vol, _ := makeModelled(f, "volume")
	eip, _ := makeModelled(f, "eip")
	vx, _ := makeModelled(f, "vxnet")
	rtr, _ := makeModelled(f, "router")
	tag, _ := makeModelled(f, "tag")
	f.c.ok("AttachVolumes", "volumes.1", vol, "instance", inst)
	f.c.ok("AssociateEip", "eip", eip, "instance", inst)
	f.c.ok("JoinRouter", "router", rtr, "vxnet", vx, "ip_network", "192.168.8.0/24")
	f.finish()
	f.c.ok("JoinVxnet", "vxnet", vx, "instances.1", inst)
	f.c.ok("AttachTags", "resource_tag_pairs.1.tag_id", tag, "resource_tag_pairs.1.resource_type", "instance",
		"resource_tag_pairs.1.resource_id", inst)
	f.c.ok("CreateSnapshots", "resources.1", vol)
	f.finish()

	names := make([]string, 0, len(reg))
	for name := range reg {
		names = append(names, name)
	}
	slices.Sort(names)
	var got bytes.Buffer
	record := func(pass, name string, fixed map[string]string) {
		world.call(name, reg[name], fixed)
		fmt.Fprintf(&got, "### %s %s %v\n%s\n", pass, name, fixed, world.body)
	}
	reads := func(pass string) {
		for _, name := range names {
			if !api.ReadOnly(name) {
				continue
			}
			record(pass, name, nil)
			if reg[name].in.Fields().ByName("verbose") != nil {
				record(pass, name, map[string]string{"verbose": "1"})
			}
		}
	}
	reads("world")
	for _, name := range names {
		if !api.ReadOnly(name) {
			record("change", name, nil)
		}
	}
	reads("jobs-running")
	f.finish()
	reads("jobs-done")

	if *updateGolden {
		if err := os.WriteFile(answersGolden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(answersGolden)
	if err != nil {
		t.Fatalf("%v (write it with -update)", err)
	}
	if bytes.Equal(got.Bytes(), want) {
		return
	}
	gl, wl := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(gl), len(wl)) {
		g, w := "", ""
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			header := ""
			for j := i; j >= 0 && j < len(wl); j-- {
				if strings.HasPrefix(wl[j], "### ") {
					header = wl[j]
					break
				}
			}
			t.Fatalf("answers differ from %s at line %d (%s):\n got: %s\nwant: %s", answersGolden, i+1, header, g, w)
		}
	}
}
