package specgen

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFieldName(t *testing.T) {
	tests := []struct {
		wire, want string
		changed    bool
	}{
		{"instance_id", "instance_id", false},
		{"val1", "val1", false},
		{"skip-slave-start", "skip_slave_start", true},
		{"min-size", "min_size", true},
		{"__comments", "comments", true},
		{"Upper", "upper", true},
		{"9lives", "f_9lives", true},
		{"a__b", "a_b", true},
	}
	for _, tt := range tests {
		got, changed := fieldName(tt.wire)
		if got != tt.want || changed != tt.changed {
			t.Errorf("fieldName(%q) = %q, %v; want %q, %v", tt.wire, got, changed, tt.want, tt.changed)
		}
	}
}

func TestPascal(t *testing.T) {
	for in, want := range map[string]string{
		"nic_vxnet": "NicVxnet", "s2_server": "S2Server", "load_balancer": "LoadBalancer",
		"dns_alias": "DnsAlias", "min-size": "MinSize", "job": "Job",
	} {
		if got := pascal(in); got != want {
			t.Errorf("pascal(%q) = %q, want %q", in, got, want)
		}
	}
}

// writeSpec lays out a tiny spec directory.
func writeSpec(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const tinyDefinitions = `{
  "widget": {"type": "object", "properties": {
    "widget_id": {"type": "string"}, "size": {"type": "integer"}, "count": {"type": "integer"},
    "create_time": {"type": "string", "format": "date-time"}, "odd-name": {"type": "string"},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "extra": {"type": "object"}, "points": {"type": "array", "items": {"type": "array"}},
    "status": {"type": "string", "enum": ["pending", "done with failure"]}
  }}
}`

const tinyWidget = `{
  "DescribeWidgets": {
    "parameters": [{"$ref": "#/parameters/zone"}],
    "get": {"operationId": "DescribeWidgets", "summary": "DescribeWidgets",
      "externalDocs": {"url": "https://docs.example/describe_widgets"},
      "parameters": [{"name": "body", "in": "body", "schema": {"type": "object", "properties": {
        "widgets": {"type": "array", "items": {"type": "string"}},
        "offset": {"type": "integer", "default": 0}, "limit": {"type": "integer", "default": 20},
        "verbose": {"type": "integer", "enum": [0, 1]}}}}],
      "responses": {"200": {"schema": {"type": "object", "properties": {
        "widget_set": {"type": "array", "items": {"$ref": "#/definitions/widget"}},
        "total_count": {"type": "integer"}, "ret_code": {"type": "integer"}, "action": {"type": "string"}}}}}}
  },
  "CreateWidgets": {
    "parameters": [{"$ref": "#/parameters/zone"}],
    "post": {"operationId": "CreateWidgets", "summary": "CreateWidgets",
      "parameters": [{"name": "body", "in": "body", "schema": {"type": "object", "required": ["name", "parts"], "properties": {
        "name": {"type": "string"}, "force": {"type": "boolean"},
        "parts": {"type": "array", "items": {"$ref": "#/definitions/widget"}},
        "spec": {"type": "object", "properties": {"depth": {"type": "number"}}}}}}],
      "responses": {"200": {"schema": {"type": "object", "properties": {
        "job_id": {"type": "string"}, "widgets": {"type": "array", "items": {"type": "string"}}}}}}}
  }
}`

func TestGenerateTiny(t *testing.T) {
	dir := writeSpec(t, map[string]string{"definitions.json": tinyDefinitions, "widget_box.json": tinyWidget, "parameters.json": `{}`})
	spec, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Generate(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := string(files["qingcloud/iaas/v1/widget_box.proto"])
	types := string(files["qingcloud/iaas/v1/types.proto"])
	for _, want := range []string{
		"service WidgetBoxService {",
		`option (qingcloud.iaas.v1.spec_file) = "widget_box.json";`,
		"rpc DescribeWidgets(DescribeWidgetsRequest) returns (DescribeWidgetsResponse) {",
		`option (google.api.http) = {get: "/v1/iaas/DescribeWidgets"};`,
		"rpc CreateWidgets(CreateWidgetsRequest) returns (CreateWidgetsResponse) {",
		`post: "/v1/iaas/CreateWidgets"`,
		"post: true",
		"Delayed: the response carries a job_id",
		"Documentation: https://docs.example/describe_widgets",
		"optional string name = 2 [(google.api.field_behavior) = REQUIRED];",
		"repeated Widget parts = 3 [(google.api.field_behavior) = REQUIRED];",
		"optional bool force = 1;",
		"message Spec {",
		"optional double depth = 1;",
		"optional string zone = 5;",
		"rpc DescribeWidgetsAll(DescribeWidgetsAllRequest) returns (stream DescribeWidgetsAllResponse) {",
		`item_field: "widget_set"`,
		"Widget widget = 1;",
	} {
		if !strings.Contains(svc, want) {
			t.Errorf("widget_box.proto lacks %q\n%s", want, svc)
		}
	}
	for _, want := range []string{
		"message Widget {",
		`google.protobuf.Timestamp create_time = 2 [json_name = "create_time"];`,
		"optional int64 size = 7;",
		"optional int32 count = 1;",
		"map<string, string> labels = 4;",
		"google.protobuf.Struct extra = 3;",
		"repeated google.protobuf.ListValue points = 6;",
		`optional string odd_name = 5 [
    json_name = "odd_name",
    (qingcloud.iaas.v1.wire_name) = "odd-name"
  ];`,
		"Known values: pending, done with failure (others are passed through).",
		`import "qingcloud/iaas/v1/options.proto";`,
	} {
		if !strings.Contains(types, want) {
			t.Errorf("types.proto lacks %q\n%s", want, types)
		}
	}
	if strings.Contains(svc, "DescribeWidgetsAllRequest {\n  optional int32 limit") || strings.Contains(svc, "CreateWidgetsAll") {
		t.Errorf("paginating variant is wrong:\n%s", svc)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(t.TempDir()); err == nil {
		t.Error("Load of an empty directory succeeded")
	}
	dir := writeSpec(t, map[string]string{"definitions.json": `{}`, "x.json": `{"A": {"get": {"parameters": [{"$ref": "#/parameters/other"}]}}}`})
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "#/parameters/other") {
		t.Errorf("Load with an unknown parameter ref: %v", err)
	}
	dir = writeSpec(t, map[string]string{"definitions.json": `{}`, "x.json": `{"A": {"get": {"responses": {"200": {"schema": {"type": "object", "properties": {"w": {"$ref": "#/definitions/nope"}}}}}}}}`})
	spec, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(spec, nil); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Generate with a dangling $ref: %v", err)
	}
}

// TestOfficialSpecs regenerates from QingCloud's specs when they are present (../shared beside the
// repository) and checks the count, determinism, and that the committed protos are fresh.
func TestOfficialSpecs(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "qingcloud-api-specs", "2013-08-30", "swagger")
	if _, err := os.Stat(dir); err != nil {
		t.Skip("official specs not present:", err)
	}
	spec, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(spec.Actions); n != 261 {
		t.Errorf("loaded %d actions, want 261", n)
	}
	// The committed numbers, as cmd/protogen reads them.
	prev := Numbers{}
	committedFiles, err := filepath.Glob(filepath.Join("..", "..", "proto", "qingcloud", "iaas", "v1", "*.proto"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range committedFiles {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(src, []byte(Header)) {
			if err := ParseNumbers(src, prev); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
		}
	}
	a, err := Generate(spec, prev)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range a {
		if !bytes.Equal(body, b[name]) {
			t.Errorf("%s: numbering differs from a fresh run; the committed numbers are not the sorted ones", name)
		}
		committed, err := os.ReadFile(filepath.Join("..", "..", "proto", name))
		if err != nil {
			t.Errorf("%s is not committed: %v", name, err)
			continue
		}
		if !bytes.Equal(committed, body) {
			t.Errorf("proto/%s is stale: run scripts/generate.sh", name)
		}
	}
}

// TestNumbersAreKept regenerates after the spec gained and lost fields: published numbers stay, new
// fields take new numbers, and removed fields' numbers are reserved.
func TestNumbersAreKept(t *testing.T) {
	gen := func(defs string, prev Numbers) (string, Numbers) {
		t.Helper()
		dir := writeSpec(t, map[string]string{"definitions.json": defs, "widget_box.json": tinyWidget})
		spec, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		files, err := Generate(spec, prev)
		if err != nil {
			t.Fatal(err)
		}
		types := files["qingcloud/iaas/v1/types.proto"]
		parsed := Numbers{}
		for _, body := range files {
			if err := ParseNumbers(body, parsed); err != nil {
				t.Fatal(err)
			}
		}
		return string(types), parsed
	}
	v1, nums := gen(tinyDefinitions, nil)
	if n := nums["Widget"].Fields["widget_id"]; n != 9 {
		t.Fatalf("widget_id = %d in the first version, want 9\n%s", n, v1)
	}
	if n := nums["CreateWidgetsRequest.Spec"].Fields["depth"]; n != 1 {
		t.Fatalf("nested CreateWidgetsRequest.Spec.depth = %d, want 1", n)
	}
	// The spec adds "aaa_new" (sorting first) and drops "count" (number 1).
	defs := strings.Replace(tinyDefinitions, `"count": {"type": "integer"},`, `"aaa_new": {"type": "string"},`, 1)
	v2, nums2 := gen(defs, nums)
	for field, want := range nums["Widget"].Fields {
		if field == "count" {
			continue
		}
		if got := nums2["Widget"].Fields[field]; got != want {
			t.Errorf("Widget.%s renumbered %d -> %d", field, want, got)
		}
	}
	if got := nums2["Widget"].Fields["aaa_new"]; got != 10 {
		t.Errorf("new field aaa_new = %d, want 10 (after the highest number ever used)", got)
	}
	if !strings.Contains(v2, "reserved 1;") {
		t.Errorf("the number of removed field count is not reserved:\n%s", v2)
	}
	// A third run keeps the reservation and is stable.
	v3, _ := gen(defs, nums2)
	if v3 != v2 {
		t.Errorf("regenerating with the published numbers changed the output:\n%s\n---\n%s", v2, v3)
	}
}
