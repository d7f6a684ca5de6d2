package deploy_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// buildCommand is the build step shared by the Dockerfile and scripts/image-build.sh (which runs it
// without a Docker engine); the two must not drift apart.
const buildCommand = "CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o"

// TestDockerfile parses ../Dockerfile with BuildKit's own parser and lint rules (what `docker build`
// uses) and checks the image the README and the Deployment rely on.
func TestDockerfile(t *testing.T) {
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ast, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, w := range ast.Warnings {
		t.Errorf("Dockerfile parser warning: %s", w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, desc, url, msg string, loc []parser.Range) {
		t.Errorf("Dockerfile lint %s: %s (%s)", rule, msg, url)
	}})
	stages, _, err := instructions.Parse(ast.AST, lint)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	if len(stages) != 2 {
		t.Fatalf("want 2 stages (build, final), got %d", len(stages))
	}
	build, final := stages[0], stages[1]
	if build.Name != "build" || !strings.HasPrefix(build.BaseName, "golang:") {
		t.Errorf("build stage: want `FROM golang:... AS build`, got %q AS %q", build.BaseName, build.Name)
	}
	if final.BaseName != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final stage: want distroless static nonroot (CA certificates, no libc), got %q", final.BaseName)
	}

	var buildRun string
	for _, c := range build.Commands {
		if r, ok := c.(*instructions.RunCommand); ok && strings.Contains(strings.Join(r.CmdLine, " "), "go build") {
			buildRun = strings.Join(r.CmdLine, " ")
		}
	}
	if !strings.Contains(buildRun, buildCommand+" /out/server ./cmd/server") {
		t.Errorf("build stage: want %q, got %q", buildCommand+" /out/server ./cmd/server", buildRun)
	}
	script, err := os.ReadFile("../scripts/image-build.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), buildCommand) {
		t.Errorf("scripts/image-build.sh no longer runs %q: keep it in step with the Dockerfile", buildCommand)
	}

	var (
		user, healthcheck, entrypoint, cmd string
		exposed                            []string
		copiesServer                       bool
	)
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.ExposeCommand:
			exposed = append(exposed, c.Ports...)
		case *instructions.HealthCheckCommand:
			healthcheck = fmt.Sprint(c.Health.Test)
		case *instructions.EntrypointCommand:
			entrypoint = fmt.Sprint(c.PrependShell, c.CmdLine)
		case *instructions.CmdCommand:
			cmd = strings.Join(c.CmdLine, " ")
		case *instructions.CopyCommand:
			copiesServer = copiesServer || (c.From == "build" && c.DestPath == "/server")
		case *instructions.RunCommand:
			t.Errorf("final stage: RUN %v cannot work on distroless (no shell)", c.CmdLine)
		}
	}
	if !copiesServer {
		t.Error("final stage: want COPY --from=build ... /server")
	}
	if user != "nonroot" && user != "nonroot:nonroot" && user != "65532" && user != "65532:65532" {
		t.Errorf("USER %q: want nonroot (uid %d, as the Deployment's runAsUser)", user, nonrootUID)
	}
	slices.Sort(exposed)
	if !slices.Equal(exposed, []string{"8080", "9090"}) {
		t.Errorf("EXPOSE %v: want 9090 and 8080", exposed)
	}
	if !strings.HasPrefix(healthcheck, "[CMD /server healthcheck") {
		t.Errorf("HEALTHCHECK %s: want CMD [\"/server\", \"healthcheck\", ...] (exec form: no shell)", healthcheck)
	}
	if entrypoint != "false [/server]" {
		t.Errorf("ENTRYPOINT %s: want the exec form [\"/server\"]", entrypoint)
	}
	for _, want := range []string{"-grpc-addr 0.0.0.0:9090", "-http-addr 0.0.0.0:8080"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("CMD %q: want %s so that the published ports reach the server", cmd, want)
		}
	}
}

// TestDockerignoreKeepsBuildInputs checks that ../.dockerignore leaves every file `go build ./cmd/server`
// reads in the build context (Go files and embedded files of the module's packages, go.mod, go.sum), and
// keeps the bulky folders out.
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	f, err := os.Open("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-e", "-deps", "-f",
		`{{if .Module}}{{if .Module.Main}}{{.Dir}}|{{join .GoFiles ","}}|{{join .EmbedFiles ","}}{{end}}{{end}}`, "./cmd/server")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./cmd/server: %v", err)
	}
	inputs := []string{"go.mod", "go.sum"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		if len(parts) != 3 {
			continue
		}
		rel, err := filepath.Rel(root, parts[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, list := range parts[1:] {
			for _, name := range strings.Split(list, ",") {
				if name != "" {
					inputs = append(inputs, filepath.ToSlash(filepath.Join(rel, name)))
				}
			}
		}
	}
	if len(inputs) < 10 {
		t.Fatalf("go list found only %v", inputs)
	}
	for _, p := range inputs {
		if excluded, err := pm.MatchesOrParentMatches(p); err != nil || excluded {
			t.Errorf(".dockerignore excludes %s, which the build needs (err %v)", p, err)
		}
	}
	for _, p := range []string{".git/HEAD", ".tools/node_modules/x", "examples/node/node_modules/x", "bin/image/server"} {
		if excluded, _ := pm.MatchesOrParentMatches(p); !excluded {
			t.Errorf(".dockerignore should exclude %s", p)
		}
	}
}
