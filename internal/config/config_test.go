package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadDefaults(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.UseEmulator() || c.GRPCAddr != "127.0.0.1:9090" || c.HTTPAddr != "127.0.0.1:8080" || c.Zone != DefaultZone || c.Endpoint != DefaultEndpoint {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestLoadPrecedence(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := env(map[string]string{
		"QINGCLOUD_ACCESS_KEY": "ENVKEY", "QINGCLOUD_SECRET_KEY": "env-secret",
		"QINGCLOUD_ZONE": "sh1a", "QINGCLOUD_ENDPOINT": "http://127.0.0.1:7780/iaas",
	})
	tests := []struct {
		name                        string
		args                        []string
		key, secret, zone, endpoint string
	}{
		{"env only", nil, "ENVKEY", "env-secret", "sh1a", "http://127.0.0.1:7780/iaas"},
		{"flags override env", []string{"-access-key", "FLAGKEY", "-secret-key-file", secretFile, "-zone", "gd2a", "-endpoint", "https://example.test/iaas/"},
			"FLAGKEY", "file-secret", "gd2a", "https://example.test/iaas/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, e)
			if err != nil {
				t.Fatal(err)
			}
			if c.UseEmulator() || c.Credentials.AccessKeyID != tt.key || c.Credentials.SecretAccessKey != tt.secret || c.Zone != tt.zone || c.Endpoint != tt.endpoint {
				t.Fatalf("got key=%q zone=%q endpoint=%q", c.Credentials.AccessKeyID, c.Zone, c.Endpoint)
			}
		})
	}
}

func TestLoadErrorsNameTheSetting(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"key without secret", nil, map[string]string{"QINGCLOUD_ACCESS_KEY": "K"}, "QINGCLOUD_SECRET_KEY"},
		{"secret without key", nil, map[string]string{"QINGCLOUD_SECRET_KEY": "s3cr3t"}, "QINGCLOUD_ACCESS_KEY"},
		{"upper-case zone", []string{"-zone", "PEK3A"}, nil, "QINGCLOUD_ZONE or -zone"},
		{"bad endpoint", nil, map[string]string{"QINGCLOUD_ENDPOINT": "ftp://x"}, "QINGCLOUD_ENDPOINT"},
		{"bad address", []string{"-grpc-addr", "9090"}, nil, "-grpc-addr"},
		{"unknown flag", []string{"-nope"}, nil, "-nope"},
		{"missing secret file", []string{"-secret-key-file", "/does/not/exist"}, nil, "-secret-key-file"},
		{"bad log level", []string{"-log-level", "loud"}, nil, "-log-level"},
		{"stray argument", []string{"serve"}, nil, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.args, env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load error = %v, want it to mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("error reveals the secret: %v", err)
			}
		})
	}
}
