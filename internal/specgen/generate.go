package specgen

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api/naming"
)

type generator struct {
	spec    *Spec
	numbers Numbers // published field numbers, kept
	inTypes bool    // rendering types.proto: definitions need no import
}

// ServiceName is the proto service generated for a spec file: load_balancer -> LoadBalancerService.
func ServiceName(specFile string) string { return pascal(specFile) + "Service" }

// Generate renders the proto files for spec, keyed by path relative to the proto root
// (qingcloud/iaas/v1/<file>.proto). Field numbers published in prev (read from the committed protos
// with ParseNumbers; nil for none) are kept. The result is deterministic.
func Generate(spec *Spec, prev Numbers) (map[string][]byte, error) {
	if prev == nil {
		prev = Numbers{}
	}
	g := &generator{spec: spec, numbers: prev}
	out := map[string][]byte{}

	types, err := g.typesFile()
	if err != nil {
		return nil, err
	}
	out["qingcloud/iaas/v1/types.proto"] = types

	byFile := map[string][]*Action{}
	for _, a := range spec.Actions {
		byFile[a.File] = append(byFile[a.File], a)
	}
	for name, actions := range byFile {
		b, err := g.serviceFile(name, actions)
		if err != nil {
			return nil, err
		}
		out["qingcloud/iaas/v1/"+name+".proto"] = b
	}
	return out, nil
}

func (g *generator) typesFile() ([]byte, error) {
	g.inTypes = true
	defer func() { g.inTypes = false }()
	f := &file{imports: map[string]bool{}}
	names := make([]string, 0, len(g.spec.Definitions))
	for k := range g.spec.Definitions {
		names = append(names, k)
	}
	sort.Strings(names)
	var body bytes.Buffer
	for i, n := range names {
		m, err := g.buildMessage(f, DefinitionMessage(n), g.spec.Definitions[n], nil)
		if err != nil {
			return nil, fmt.Errorf("specgen: definition %s: %w", n, err)
		}
		m.comment = fmt.Sprintf("%s is the QingCloud resource `%s` of definitions.json.", m.name, n)
		if i > 0 {
			body.WriteString("\n")
		}
		g.writeMessage(&body, m, "", "")
	}
	return assemble(f, "definitions.json", &body), nil
}

func (g *generator) serviceFile(specFile string, actions []*Action) ([]byte, error) {
	f := &file{imports: map[string]bool{importAnnotations: true, importOptions: true}}
	svc := ServiceName(specFile)
	var rpcs, msgs bytes.Buffer
	for i, a := range actions {
		var extra []*field
		if a.HasZone {
			extra = append(extra, &field{
				name: "zone", typ: "string", label: "optional",
				comment: "Zone ID, lower case (e.g. pek3a). Defaults to the server's configured zone when unset.",
			})
		}
		req, err := g.buildMessage(f, a.Name+"Request", a.Request, extra)
		if err != nil {
			return nil, fmt.Errorf("specgen: %s request: %w", a.Name, err)
		}
		req.comment = fmt.Sprintf("%sRequest holds the parameters of the QingCloud action %s.", a.Name, a.Name)
		resp, err := g.buildMessage(f, a.Name+"Response", a.Response, nil)
		if err != nil {
			return nil, fmt.Errorf("specgen: %s response: %w", a.Name, err)
		}
		resp.comment = fmt.Sprintf("%sResponse is the answer of the QingCloud action %s.", a.Name, a.Name)

		if i > 0 {
			rpcs.WriteString("\n")
		}
		writeComment(&rpcs, rpcComment(a, resp), "  ")
		fmt.Fprintf(&rpcs, "  rpc %s(%sRequest) returns (%sResponse) {\n", a.Name, a.Name, a.Name)
		if naming.ReadOnlyByName(a.Name) && queryable(req) {
			fmt.Fprintf(&rpcs, "    option (google.api.http) = {get: %q};\n", RESTPrefix+a.Name)
		} else {
			fmt.Fprintf(&rpcs, "    option (google.api.http) = {\n      post: %q\n      body: \"*\"\n    };\n", RESTPrefix+a.Name)
		}
		opts := []string{fmt.Sprintf("name: %q", a.Name)}
		if naming.ReadOnlyByName(a.Name) {
			opts = append(opts, "read_only: true")
		}
		if a.Post {
			opts = append(opts, "post: true")
		}
		if a.DocURL != "" {
			opts = append(opts, fmt.Sprintf("doc_url: %q", a.DocURL))
		}
		if len(opts) == 1 {
			fmt.Fprintf(&rpcs, "    option (qingcloud.iaas.v1.action) = {%s};\n  }\n", opts[0])
		} else {
			fmt.Fprintf(&rpcs, "    option (qingcloud.iaas.v1.action) = {\n")
			for _, o := range opts {
				fmt.Fprintf(&rpcs, "      %s\n", o)
			}
			fmt.Fprintf(&rpcs, "    };\n  }\n")
		}

		msgs.WriteString("\n")
		g.writeMessage(&msgs, req, "", "")
		msgs.WriteString("\n")
		g.writeMessage(&msgs, resp, "", "")

		if set := pageSet(a, req, resp); set != nil {
			g.writePagedVariant(&rpcs, &msgs, a, req, set)
		}
	}
	var body bytes.Buffer
	writeComment(&body, fmt.Sprintf("%s serves the QingCloud actions of the spec file %s.json.", svc, specFile), "")
	fmt.Fprintf(&body, "service %s {\n  option (qingcloud.iaas.v1.spec_file) = %q;\n\n", svc, specFile+".json")
	body.Write(rpcs.Bytes())
	body.WriteString("}\n")
	body.Write(msgs.Bytes())
	return assemble(f, specFile+".json", &body), nil
}

func rpcComment(a *Action, resp *message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s calls the QingCloud action %s.", a.Name, a.Name)
	if a.Summary != "" && a.Summary != a.Name {
		fmt.Fprintf(&b, " %s", strings.TrimSuffix(a.Summary, ".")+".")
	}
	if a.Doc != "" {
		fmt.Fprintf(&b, "\n%s", a.Doc)
	}
	var notes []string
	if naming.ReadOnlyByName(a.Name) {
		notes = append(notes, "Read-only.")
	}
	for _, fl := range resp.fields {
		if fl.name == "job_id" || fl.name == "job_ids" {
			notes = append(notes, "Delayed: the response carries a "+fl.name+"; stream its progress with WatchService.WatchJobs.")
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, " "))
	}
	if a.DocURL != "" {
		b.WriteString("\nDocumentation: " + a.DocURL)
	}
	return b.String()
}

// queryable reports whether every request field can travel as a URL query parameter through grpc-gateway.
func queryable(m *message) bool {
	for _, fl := range m.fields {
		switch {
		case strings.HasPrefix(fl.typ, "map<"):
			return false
		case fl.typ == "google.protobuf.Timestamp":
		case strings.Contains(fl.typ, ".") || (fl.typ[0] >= 'A' && fl.typ[0] <= 'Z'):
			return false
		}
	}
	return true
}

func assemble(f *file, source string, body *bytes.Buffer) []byte {
	var b bytes.Buffer
	b.WriteString(Header + "\n")
	fmt.Fprintf(&b, "// Source: %s\n\n", source)
	b.WriteString("syntax = \"proto3\";\n\npackage " + Package + ";\n\n")
	imps := make([]string, 0, len(f.imports))
	for k := range f.imports {
		imps = append(imps, k)
	}
	sort.Strings(imps)
	for _, i := range imps {
		fmt.Fprintf(&b, "import %q;\n", i)
	}
	if len(imps) > 0 {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "option go_package = %q;\n\n", GoPackage)
	b.Write(body.Bytes())
	return b.Bytes()
}

// pageSet returns the list field of a read-only action that pages with offset/limit, or nil.
func pageSet(a *Action, req, resp *message) *field {
	if !naming.ReadOnlyByName(a.Name) {
		return nil
	}
	var hasOffset, hasLimit bool
	for _, fl := range req.fields {
		hasOffset = hasOffset || fl.name == "offset"
		hasLimit = hasLimit || fl.name == "limit"
	}
	if !hasOffset || !hasLimit {
		return nil
	}
	var set *field
	for _, fl := range resp.fields {
		if fl.label == "repeated" && strings.HasSuffix(fl.name, "_set") && fl.typ[0] >= 'A' && fl.typ[0] <= 'Z' {
			if set != nil {
				return nil // ambiguous
			}
			set = fl
		}
	}
	return set
}

// writePagedVariant renders <Action>All: the same request without offset/limit, streaming one item per
// message across all pages.
func (g *generator) writePagedVariant(rpcs, msgs *bytes.Buffer, a *Action, req *message, set *field) {
	name := a.Name + "All"
	item := strings.TrimSuffix(set.name, "_set")
	rpcs.WriteString("\n")
	writeComment(rpcs, fmt.Sprintf("%s streams every item that %s matches, one per message, fetching pages of 100 "+
		"until all are sent (QingCloud caps a page at 100 and silently truncates). Items are in QingCloud's order "+
		"and never repeated.\nRead-only.", name, a.Name), "  ")
	fmt.Fprintf(rpcs, "  rpc %s(%sRequest) returns (stream %sResponse) {\n", name, name, name)
	areq := &message{name: name + "Request"}
	for _, fl := range req.fields {
		if fl.name != "offset" && fl.name != "limit" {
			areq.fields = append(areq.fields, fl)
		}
	}
	areq.nested = req.nested
	if queryable(areq) {
		fmt.Fprintf(rpcs, "    option (google.api.http) = {get: %q};\n", RESTPrefix+a.Name+":all")
	} else {
		fmt.Fprintf(rpcs, "    option (google.api.http) = {\n      post: %q\n      body: \"*\"\n    };\n", RESTPrefix+a.Name+":all")
	}
	fmt.Fprintf(rpcs, "    option (qingcloud.iaas.v1.action) = {\n      name: %q\n      read_only: true\n      item_field: %q\n    };\n  }\n", a.Name, set.name)

	areq.comment = fmt.Sprintf("%s holds the filters of %s; paging is the server's.", areq.name, a.Name)
	aresp := &message{
		name:    name + "Response",
		comment: fmt.Sprintf("%sResponse is one item of the %s listing.", name, a.Name),
		fields: []*field{
			{name: item, typ: set.typ, comment: "The item."},
			{name: "total_count", typ: "int32", label: "optional", comment: "The number of matching items QingCloud reported with the page this item came from."},
			{name: "index", typ: "int32", comment: "The item's position in the listing, from 0."},
		},
	}
	msgs.WriteString("\n")
	g.writeMessage(msgs, areq, "", "")
	msgs.WriteString("\n")
	g.writeMessage(msgs, aresp, "", "")
}
