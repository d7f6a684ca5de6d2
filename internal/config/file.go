package config

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Section is the top-level key of the configuration file that holds this server's own settings.
// QingCloud's Go SDK ignores it; qingcloud-cli does not (it passes every top-level key to its
// connection), so the server's settings belong in a file of its own (-config) when the CLI reads
// ~/.qingcloud/config.yaml (docs/configuration.md).
const Section = "qingcloud_grpc"

// officialKeys are the top-level keys of QingCloud's own config.yaml that this server reads. Every
// other top-level key (log_level, credential_proxy_*, ...) belongs to the official tools and is
// ignored.
var officialKeys = map[string]bool{
	"qy_access_key_id": true, "qy_secret_access_key": true, "zone": true,
	"host": true, "port": true, "protocol": true, "uri": true,
	"connection_retries": true, "connection_timeout": true,
}

// The keys of the qingcloud_grpc section and of its sub-mappings. The scalar keys come from the
// settings table, so a setting added there is accepted in the file without a second list to update.
var (
	sectionKeys  = append(settingFileKeys(Section+"."), "tls", "emulator", "profiles", "tokens")
	tlsKeys      = settingFileKeys(Section + ".tls.")
	emulatorKeys = settingFileKeys(Section + ".emulator.")
	profileKeys  = []string{"qy_access_key_id", "qy_secret_access_key", "secret_access_key_file", "zone", "quota_requests", "quota_window"}
	tokenKeys    = []string{"name", "sha256", "profile"}
)

// settingFileKeys lists the file keys of the settings directly under prefix ("qingcloud_grpc."), in
// the order of the settings table.
func settingFileKeys(prefix string) []string {
	var keys []string
	for _, s := range settings {
		if k, ok := strings.CutPrefix(s.file, prefix); ok && !strings.Contains(k, ".") {
			keys = append(keys, k)
		}
	}
	return keys
}

// fileValue is one scalar of the file and where it is.
type fileValue struct {
	value string
	line  int
}

// fileProfile is one entry of qingcloud_grpc.profiles.
type fileProfile struct {
	name   string
	line   int
	values map[string]fileValue
}

// fileToken is one entry of qingcloud_grpc.tokens.
type fileToken struct {
	index  int // 0-based
	line   int
	values map[string]fileValue
}

// fileData is what Load reads from the configuration file.
type fileData struct {
	path     string
	values   map[string]fileValue // by dotted key: "zone", "qingcloud_grpc.tls.cert_file"
	profiles []fileProfile
	tokens   []fileToken
}

// at names a key of the file for error messages: "/path/config.yaml:3: zone".
func (f *fileData) at(line int, key string) string {
	return fmt.Sprintf("%s:%d: %s", f.path, line, key)
}

// resolve makes a path given in the file relative to the file's folder.
func (f *fileData) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(f.path), p)
}

// parseFile reads the official keys and the qingcloud_grpc section. Errors carry the file path, the
// line and the key, and never quote values (the file holds secrets).
func parseFile(path string, data []byte) (*fileData, error) {
	f := &fileData{path: path, values: map[string]fileValue{}}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: not valid YAML: %v", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return f, nil // empty file
	}
	doc := deref(root.Content[0])
	if doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		return f, nil // only comments
	}
	if doc.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the file must be a mapping of keys (qy_access_key_id: ..., zone: ...)", path, doc.Line)
	}
	err := f.mapping(doc, "", nil, func(key string, k, v *yaml.Node) error {
		switch {
		case officialKeys[key]:
			return f.scalar(key, v)
		case key == Section:
			return f.section(v)
		}
		return nil // a key of the official tools
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// deref follows YAML aliases.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// mapping calls fn for each key of the mapping n (whose dotted path is prefix), rejecting duplicate
// keys and, when known is not nil, keys not in known.
func (f *fileData) mapping(n *yaml.Node, prefix string, known []string, fn func(key string, k, v *yaml.Node) error) error {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%s: must be a mapping of keys", f.at(n.Line, strings.TrimSuffix(prefix, ".")))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		key := k.Value
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("%s: set twice (first on line %d)", f.at(k.Line, prefix+key), prev)
		}
		seen[key] = k.Line
		if known != nil && !contains(known, key) {
			hint := "known keys: " + strings.Join(known, ", ")
			if key == "token" {
				hint = "store the token's SHA-256 as sha256 (`server hash-token` prints it), never the token itself"
			}
			return fmt.Errorf("%s: unknown setting (%s)", f.at(k.Line, prefix+key), hint)
		}
		if err := fn(key, k, v); err != nil {
			return err
		}
	}
	return nil
}

// scalar records v under key; null leaves the key unset.
func (f *fileData) scalar(key string, v *yaml.Node) error {
	val, ok, err := f.scalarValue(key, v)
	if err != nil || !ok {
		return err
	}
	f.values[key] = val
	return nil
}

func (f *fileData) scalarValue(key string, v *yaml.Node) (fileValue, bool, error) {
	v = deref(v)
	if v.Kind != yaml.ScalarNode {
		return fileValue{}, false, fmt.Errorf("%s: must be a single value, not a list or mapping", f.at(v.Line, key))
	}
	if v.Tag == "!!null" {
		return fileValue{}, false, nil
	}
	return fileValue{value: strings.TrimSpace(v.Value), line: v.Line}, true, nil
}

// section reads the qingcloud_grpc mapping.
func (f *fileData) section(n *yaml.Node) error {
	prefix := Section + "."
	return f.mapping(n, prefix, sectionKeys, func(key string, k, v *yaml.Node) error {
		switch key {
		case "tls":
			return f.mapping(v, prefix+"tls.", tlsKeys, func(key string, _, v *yaml.Node) error {
				return f.scalar(prefix+"tls."+key, v)
			})
		case "emulator":
			return f.mapping(v, prefix+"emulator.", emulatorKeys, func(key string, _, v *yaml.Node) error {
				return f.scalar(prefix+"emulator."+key, v)
			})
		case "profiles":
			return f.mapping(v, prefix+"profiles.", nil, func(name string, k, v *yaml.Node) error {
				p := fileProfile{name: name, line: k.Line, values: map[string]fileValue{}}
				pp := prefix + "profiles." + name + "."
				err := f.mapping(v, pp, profileKeys, func(key string, _, v *yaml.Node) error {
					val, ok, err := f.scalarValue(pp+key, v)
					if ok {
						p.values[key] = val
					}
					return err
				})
				f.profiles = append(f.profiles, p)
				return err
			})
		case "tokens":
			return f.tokenList(v)
		}
		return f.scalar(prefix+key, v)
	})
}

// tokenList reads qingcloud_grpc.tokens, a list of {name, sha256, profile}.
func (f *fileData) tokenList(n *yaml.Node) error {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return fmt.Errorf("%s: must be a list of {name, sha256, profile}", f.at(n.Line, Section+".tokens"))
	}
	for i, item := range n.Content {
		t := fileToken{index: i, line: deref(item).Line, values: map[string]fileValue{}}
		tp := fmt.Sprintf("%s.tokens[%d].", Section, i)
		err := f.mapping(item, tp, tokenKeys, func(key string, _, v *yaml.Node) error {
			val, ok, err := f.scalarValue(tp+key, v)
			if ok {
				t.values[key] = val
			}
			return err
		})
		if err != nil {
			return err
		}
		f.tokens = append(f.tokens, t)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// sortedProfiles returns the profiles sorted by name.
func (f *fileData) sortedProfiles() []fileProfile {
	ps := append([]fileProfile(nil), f.profiles...)
	sort.Slice(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
	return ps
}
