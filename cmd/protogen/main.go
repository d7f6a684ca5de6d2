// Command protogen generates the qingcloud.iaas.v1 protos from QingCloud's official Swagger specs.
//
// Usage:
//
//	go run ./cmd/protogen -specs ../shared/qingcloud-api-specs/2013-08-30/swagger -out proto
//
// It writes one file per spec file plus types.proto under <out>/qingcloud/iaas/v1, and deletes generated
// files (those starting with the generated-code header) that the specs no longer produce. Hand-written
// files in the same directory are left alone. Field numbers already in the generated files are kept:
// new fields get new numbers and the numbers of removed fields are reserved, so clients built against
// an earlier version keep working.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/specgen"
)

func main() {
	specs := flag.String("specs", "../shared/qingcloud-api-specs/2013-08-30/swagger", "directory of the Swagger spec files")
	out := flag.String("out", "proto", "proto root directory to write into")
	flag.Parse()
	if err := run(*specs, *out); err != nil {
		fmt.Fprintln(os.Stderr, "protogen:", err)
		os.Exit(1)
	}
}

func run(specDir, outDir string) error {
	spec, err := specgen.Load(specDir)
	if err != nil {
		return err
	}
	dir := filepath.Join(outDir, "qingcloud", "iaas", "v1")
	prev, err := publishedNumbers(dir)
	if err != nil {
		return err
	}
	files, err := specgen.Generate(spec, prev)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Remove generated files that are no longer produced.
	existing, err := filepath.Glob(filepath.Join(dir, "*.proto"))
	if err != nil {
		return err
	}
	for _, p := range existing {
		rel, _ := filepath.Rel(outDir, p)
		if _, keep := files[filepath.ToSlash(rel)]; keep || !generated(p) {
			continue
		}
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(outDir, filepath.FromSlash(n))
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, files[n]) {
			continue
		}
		if err := os.WriteFile(p, files[n], 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("protogen: %d actions in %d files\n", len(spec.Actions), len(files))
	return nil
}

// publishedNumbers reads the field numbers of the generated files already in dir, so that
// regenerating never renumbers a field.
func publishedNumbers(dir string) (specgen.Numbers, error) {
	prev := specgen.Numbers{}
	files, err := filepath.Glob(filepath.Join(dir, "*.proto"))
	if err != nil {
		return nil, err
	}
	for _, p := range files {
		if !generated(p) {
			continue
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if err := specgen.ParseNumbers(src, prev); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	return prev, nil
}

func generated(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	return strings.HasPrefix(line, specgen.Header)
}
