package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadFile parses arbitrary config files: Load never panics, fails with an error that names the
// file, or returns settings that passed validation (a lower-case zone, an http(s) endpoint), and never
// puts the secret into an error.
func FuzzLoadFile(f *testing.F) {
	for _, s := range []string{
		"qy_access_key_id: 'AK'\nqy_secret_access_key: 's3cr3t-value'\nzone: pek3a\n",
		"host: 127.0.0.1\nport: 7780\nprotocol: http\nuri: /iaas\nconnection_timeout: 30\n",
		"qingcloud_grpc:\n  grpc_addr: 0.0.0.0:9090\n  tokens:\n    - name: ci\n      sha256: " + strings.Repeat("ab", 32) + "\n      profile: default\n",
		"qingcloud_grpc:\n  profiles:\n    a:\n      qy_access_key_id: K\n      qy_secret_access_key: s3cr3t-value\n",
		"zone: PEK3A\n", "port: -1\n", "- a\n- b\n", "{", ": :\n", "qingcloud_grpc: 3\n", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, content string) {
		dir := t.TempDir()
		path := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(nil, env(map[string]string{"QINGCLOUD_CONFIG": path, "HOME": dir}))
		if err != nil {
			if strings.Contains(err.Error(), "s3cr3t-value") {
				t.Fatalf("error reveals the secret: %v", err)
			}
			return
		}
		if c.Zone != strings.ToLower(c.Zone) || !(strings.HasPrefix(c.Endpoint, "http://") || strings.HasPrefix(c.Endpoint, "https://")) {
			t.Fatalf("accepted zone %q endpoint %q", c.Zone, c.Endpoint)
		}
	})
}
