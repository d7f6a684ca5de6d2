package emulator

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// zoneSeed is a zone of the seeded catalog.
type zoneSeed struct{ id, region string }

// zoneCatalog lists the zones every account sees, all active, with their regions as QingCloud's
// docs name them (qingcloud-protocol.md §11.1): pek3a and ap2a are zones of their own, region pek3 is
// pek3b/pek3c/pek3d, sh1 is sh1a/sh1b and gd2 is gd2a/gd2b.
var zoneCatalog = []zoneSeed{
	{"pek3a", "pek3a"}, {"pek3b", "pek3"}, {"pek3c", "pek3"}, {"pek3d", "pek3"},
	{"sh1a", "sh1"}, {"sh1b", "sh1"},
	{"gd2a", "gd2"}, {"gd2b", "gd2"},
	{"ap2a", "ap2a"},
}

func allZoneIDs() []string {
	out := make([]string, len(zoneCatalog))
	for i, z := range zoneCatalog {
		out[i] = z.id
	}
	return out
}

// resolveZone returns the zones a zone parameter covers: a zone id covers itself, a region id
// every zone DescribeZones reports in that region (resources created there live in the first of
// them), so that zone=<region_id> sees exactly the resources of the zones that name that region.
func resolveZone(z string) ([]string, bool) {
	var region []string
	for _, s := range zoneCatalog {
		if s.id == z {
			return []string{z}, true
		}
		if s.region == z {
			region = append(region, s.id)
		}
	}
	return region, len(region) > 0
}

type zoneOut struct {
	ZoneID   string `json:"zone_id"`
	Status   string `json:"status"`
	RegionID string `json:"region_id"`
}

// imageSeed is a system image of the catalog.
type imageSeed struct {
	id, name, osFamily, platform, processor, defaultUser string
	size                                                 int
}

// imageCatalog lists the public system images (names seen in the docs and SDK examples).
var imageCatalog = []imageSeed{
	{"centos64x86a", "CentOS 6.4 64bit", "centos", "linux", "64bit", "root", 20},
	{"centos64x64", "CentOS 6.4 64bit", "centos", "linux", "64bit", "root", 20},
	{"centos63x64", "CentOS 6.3 64bit", "centos", "linux", "64bit", "root", 20},
	{"centos7x64d", "CentOS 7.0 64bit", "centos", "linux", "64bit", "root", 20},
	{"centos73x64", "CentOS 7.3 64bit", "centos", "linux", "64bit", "root", 20},
	{"centos76x64a", "CentOS 7.6 64bit", "centos", "linux", "64bit", "root", 20},
	{"centos77x64a", "CentOS 7.7 64bit", "centos", "linux", "64bit", "root", 20},
	{"trustysrvx64f", "Ubuntu Server 14.04.5 LTS 64bit", "ubuntu", "linux", "64bit", "ubuntu", 20},
	{"bionic1x64", "Ubuntu Server 18.04.1 LTS 64bit", "ubuntu", "linux", "64bit", "ubuntu", 20},
	{"win2k8r2eni64", "Windows Server 2008 R2 Enterprise 64bit", "windows", "windows", "64bit", "Administrator", 50},
}

// catalogEpoch is the create_time of catalog images.
var catalogEpoch = time.Date(2013, 8, 30, 5, 13, 32, 0, time.UTC)

// instanceTypeSeed is an instance type of the catalog.
type instanceTypeSeed struct {
	id     string
	cpu    int
	memory int // MB
}

// instanceTypeCatalog: the classic cNmM family, legacy names and the S1/E2 families (§11.2).
var instanceTypeCatalog = func() []instanceTypeSeed {
	out := []instanceTypeSeed{
		{"small_a", 1, 1024}, {"small_b", 1, 2048}, {"small_c", 1, 4096},
		{"medium_a", 2, 2048}, {"medium_b", 2, 4096}, {"medium_c", 2, 8192},
		{"large_a", 4, 4096}, {"large_b", 4, 8192}, {"large_c", 4, 16384},
	}
	for _, c := range []int{1, 2, 4, 8, 16} {
		for _, m := range []int{1, 2, 4, 8, 16, 32} {
			if m >= c && m <= 4*c {
				out = append(out, instanceTypeSeed{fmt.Sprintf("c%dm%d", c, m), c, m * 1024})
			}
		}
	}
	sizes := []struct {
		name string
		cpu  int
	}{{"small", 1}, {"large", 2}, {"xlarge", 4}, {"2xlarge", 8}, {"4xlarge", 16}}
	for _, fam := range []string{"s1", "e2"} {
		for _, s := range sizes {
			for _, r := range []int{1, 2, 4} {
				out = append(out, instanceTypeSeed{fmt.Sprintf("%s.%s.r%d", fam, s.name, r), s.cpu, s.cpu * r * 1024})
			}
		}
	}
	return out
}()

func findInstanceType(id string) (instanceTypeSeed, bool) {
	for _, t := range instanceTypeCatalog {
		if t.id == id {
			return t, true
		}
	}
	return instanceTypeSeed{}, false
}

// instanceTypeFor returns the catalog name for cpu/memory, or a cNmM-style name.
func instanceTypeFor(cpu, memory int) string {
	for _, t := range instanceTypeCatalog {
		if t.cpu == cpu && t.memory == memory && strings.HasPrefix(t.id, "c") {
			return t.id
		}
	}
	return fmt.Sprintf("c%dm%d", cpu, memory/1024)
}

type instanceTypeOut struct {
	InstanceTypeID   string `json:"instance_type_id"`
	InstanceTypeName string `json:"instance_type_name"`
	Description      string `json:"description"`
	VcpusCurrent     int    `json:"vcpus_current"`
	MemoryCurrent    int    `json:"memory_current"`
	Status           string `json:"status"`
	ZoneID           string `json:"zone_id"`
}

func init() {
	registerNoZone("DescribeZones", describeZones)
	register("DescribeInstanceTypes", describeInstanceTypes)
}

// describeZones: zones.N, status.N; no zone parameter.
func describeZones(a *account, r *request) (result, *apiError) {
	idOK, statusOK := idFilter(r.list("zones")), idFilter(r.list("status"))
	var items []zoneSeed
	for _, z := range zoneCatalog {
		if idOK(z.id) && statusOK("active") {
			items = append(items, z)
		}
	}
	return describeResult(r, "zone_set", items, func(z zoneSeed) zoneOut {
		return zoneOut{ZoneID: z.id, Status: "active", RegionID: z.region}
	})
}

// describeInstanceTypes: instance_types.N in the request zone. The action takes no offset/limit
// (unlike the other Describe actions), so every matching type is answered.
func describeInstanceTypes(a *account, r *request) (result, *apiError) {
	idOK := idFilter(r.list("instance_types"))
	var items []instanceTypeSeed
	for _, t := range instanceTypeCatalog {
		if idOK(t.id) {
			items = append(items, t)
		}
	}
	zone := a.createZone(r)
	out := make([]instanceTypeOut, len(items))
	for i, t := range items {
		out[i] = instanceTypeOut{
			InstanceTypeID: t.id, InstanceTypeName: fmt.Sprintf("%d CPU %d GB", t.cpu, t.memory/1024),
			VcpusCurrent: t.cpu, MemoryCurrent: t.memory, Status: "available", ZoneID: zone,
		}
	}
	return result{"instance_type_set": out, "total_count": len(out)}, nil
}

// seed creates the per-account defaults: a default security group in every zone.
func (a *account) seed(now time.Time) {
	a.seedBasicNetwork()
	a.seedImages()
	for _, z := range zoneCatalog {
		sg := a.addSecurityGroup(base{id: a.newID("sg"), name: "default security group", zone: z.id, created: now,
			statusTime: now}, true)
		a.defaultSGs[z.id] = sg.id
		for _, rule := range []struct {
			name, proto, val1 string
			prio              int
		}{{"ssh", "tcp", "22", 0}, {"ping", "icmp", "8", 1}} {
			m := &iaasv1.SecurityGroupRule{Protocol: proto.String(rule.proto), Priority: proto.Int32(int32(rule.prio)),
				Action: proto.String("accept"), Direction: proto.Int32(0), Val1: proto.String(rule.val1),
				Val2: proto.String(""), Val3: proto.String("")}
			if rule.proto == "icmp" {
				m.Val2 = proto.String("0")
			}
			a.addRule(sg, rule.name, m)
		}
	}
}
