// Package specgen turns QingCloud's official Swagger 2.0 specs into the protobuf definition of the
// qingcloud.iaas.v1 API: one service per spec file, one RPC per action, request and response messages
// with QingCloud's own names, and the resource messages of definitions.json.
//
// The output is deterministic: everything is sorted, so regenerating from the same specs is a no-op.
// The type mapping is documented in docs/api-mapping.md.
package specgen

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Schema is the subset of a Swagger 2.0 schema object that the QingCloud specs use.
type Schema struct {
	Ref                  string             `json:"$ref"`
	Type                 string             `json:"type"`
	Format               string             `json:"format"`
	Description          string             `json:"description"`
	Properties           map[string]*Schema `json:"properties"`
	Items                *Schema            `json:"items"`
	AdditionalProperties json.RawMessage    `json:"additionalProperties"`
	Required             []string           `json:"required"`
	Enum                 []any              `json:"enum"`
	Default              any                `json:"default"`
}

// Parameter is a Swagger operation or path parameter.
type Parameter struct {
	Ref      string  `json:"$ref"`
	Name     string  `json:"name"`
	In       string  `json:"in"`
	Type     string  `json:"type"`
	Required bool    `json:"required"`
	Schema   *Schema `json:"schema"`
}

type operation struct {
	OperationID  string `json:"operationId"`
	Summary      string `json:"summary"`
	Description  string `json:"description"`
	ExternalDocs struct {
		URL string `json:"url"`
	} `json:"externalDocs"`
	Parameters []Parameter `json:"parameters"`
	Responses  map[string]struct {
		Schema *Schema `json:"schema"`
	} `json:"responses"`
}

type pathItem struct {
	Parameters []Parameter `json:"parameters"`
	Get        *operation  `json:"get"`
	Post       *operation  `json:"post"`
}

// Action is one QingCloud API action as the spec describes it.
type Action struct {
	Name     string  // action name, e.g. RunInstances
	File     string  // spec file base name without extension, e.g. instance
	Summary  string  // spec summary
	Doc      string  // spec description
	DocURL   string  // official documentation page
	Post     bool    // the spec declares POST
	HasZone  bool    // the action takes the common zone parameter
	Request  *Schema // body schema (object); never nil
	Response *Schema // 200 response schema (object); never nil
}

// Spec is a loaded set of spec files.
type Spec struct {
	Definitions map[string]*Schema
	Actions     []*Action // sorted by file, then name
}

// Load reads every spec file in dir (the swagger folder of qingcloud-api-specs).
func Load(dir string) (*Spec, error) {
	s := &Spec{}
	if err := readJSON(filepath.Join(dir, "definitions.json"), &s.Definitions); err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("specgen: list %s: %w", dir, err)
	}
	sort.Strings(files)
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".json")
		switch base {
		case "definitions", "parameters", "api_v2.0":
			continue
		}
		var items map[string]pathItem
		if err := readJSON(f, &items); err != nil {
			return nil, err
		}
		for name, it := range items {
			a, err := newAction(base, name, it)
			if err != nil {
				return nil, err
			}
			s.Actions = append(s.Actions, a)
		}
	}
	if len(s.Actions) == 0 {
		return nil, fmt.Errorf("specgen: no actions found in %s", dir)
	}
	sort.Slice(s.Actions, func(i, j int) bool {
		a, b := s.Actions[i], s.Actions[j]
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Name < b.Name
	})
	return s, nil
}

func newAction(file, name string, it pathItem) (*Action, error) {
	op, post := it.Get, false
	if op == nil {
		op, post = it.Post, true
	}
	if op == nil {
		return nil, fmt.Errorf("specgen: %s.json: action %s has neither get nor post", file, name)
	}
	a := &Action{
		Name:    name,
		File:    file,
		Summary: strings.TrimSpace(op.Summary),
		Doc:     strings.TrimSpace(op.Description),
		DocURL:  op.ExternalDocs.URL,
		Post:    post,
		Request: &Schema{Type: "object", Properties: map[string]*Schema{}},
	}
	if op.OperationID != "" && op.OperationID != name {
		return nil, fmt.Errorf("specgen: %s.json: action %s has operationId %s", file, name, op.OperationID)
	}
	params := append(append([]Parameter{}, it.Parameters...), op.Parameters...)
	for _, p := range params {
		switch {
		case p.Ref == "#/parameters/zone" || (p.Name == "zone" && p.In != "body"):
			a.HasZone = true
		case p.In == "body" && p.Schema != nil:
			for k, v := range p.Schema.Properties {
				a.Request.Properties[k] = v
			}
			a.Request.Required = append(a.Request.Required, p.Schema.Required...)
		case p.Ref != "":
			return nil, fmt.Errorf("specgen: %s.json: action %s: unsupported parameter reference %s", file, name, p.Ref)
		default:
			// A plain (non-body) parameter: treat it as a scalar property.
			a.Request.Properties[p.Name] = &Schema{Type: p.Type}
			if p.Required {
				a.Request.Required = append(a.Request.Required, p.Name)
			}
		}
	}
	if _, ok := a.Request.Properties["zone"]; ok {
		a.HasZone = true
		delete(a.Request.Properties, "zone") // the zone field is added uniformly by the renderer
	}
	a.Response = &Schema{Type: "object"}
	if r, ok := op.Responses["200"]; ok && r.Schema != nil {
		a.Response = r.Schema
	}
	return a, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("specgen: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("specgen: parse %s: %w", path, err)
	}
	return nil
}
