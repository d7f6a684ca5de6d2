package signer_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

const (
	credAccessKey = "QYACCESSKEYIDEXAMPLE"
	credSecret    = "TOPSECRET-do-not-print"
)

var creds = signer.Credentials{AccessKeyID: credAccessKey, SecretAccessKey: credSecret}

func checkRedacted(t *testing.T, what, out string) {
	t.Helper()
	if strings.Contains(out, credSecret) {
		t.Errorf("%s reveals the secret: %s", what, out)
	}
	if !strings.Contains(out, credAccessKey) {
		t.Errorf("%s lacks the access key id: %s", what, out)
	}
	if !strings.Contains(out, "[REDACTED]") {
		t.Errorf("%s lacks [REDACTED]: %s", what, out)
	}
}

func TestCredentialsFormatting(t *testing.T) {
	s := &signer.Signer{Credentials: creds, Algorithm: signer.HmacSHA1}
	type wrapper struct {
		Name  string
		Creds signer.Credentials
		Ptr   *signer.Credentials
	}
	w := wrapper{Name: "w", Creds: creds, Ptr: &creds}
	formats := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3v", "%[1]T %[1]v"}
	values := map[string]any{"value": creds, "pointer": &creds, "signer": s, "signer value": *s, "nested": w, "slice": []signer.Credentials{creds}}
	for name, v := range values {
		for _, f := range formats {
			out := fmt.Sprintf(f, v)
			checkRedacted(t, fmt.Sprintf("Sprintf(%q, %s)", f, name), out)
		}
		checkRedacted(t, "Sprint "+name, fmt.Sprint(v))
		checkRedacted(t, "Sprintln "+name, fmt.Sprintln(v))
	}
	checkRedacted(t, "String", creds.String())
	checkRedacted(t, "GoString", creds.GoString())
	if got, want := fmt.Sprintf("%#v", creds), `signer.Credentials{AccessKeyID:"QYACCESSKEYIDEXAMPLE", SecretAccessKey:"[REDACTED]"}`; got != want {
		t.Errorf("%%#v = %s, want %s", got, want)
	}
	if got, want := fmt.Sprintf("%v", creds), "{AccessKeyID:QYACCESSKEYIDEXAMPLE SecretAccessKey:[REDACTED]}"; got != want {
		t.Errorf("%%v = %s, want %s", got, want)
	}
}

func TestCredentialsSlog(t *testing.T) {
	for _, tc := range []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(tc.new(&buf))
			log.Info("creds", "creds", creds, "ptr", &creds, slog.Any("any", creds))
			log.With("bound", creds).WithGroup("g").Info("group", slog.Group("inner", "c", creds))
			log.Info("signer", "signer", &signer.Signer{Credentials: creds}) // text handler formats with %+v
			out := buf.String()
			if strings.Contains(out, credSecret) {
				t.Errorf("slog %s output reveals the secret:\n%s", tc.name, out)
			}
			if strings.Count(out, "[REDACTED]") < 5 {
				t.Errorf("slog %s output has too few [REDACTED]:\n%s", tc.name, out)
			}
		})
	}

	t.Run("json structure", func(t *testing.T) {
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "creds", creds)
		var rec struct {
			Creds map[string]string `json:"creds"`
		}
		if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
			t.Fatalf("unmarshal %s: %v", buf.String(), err)
		}
		want := map[string]string{"access_key_id": credAccessKey, "secret_access_key": "[REDACTED]"}
		if fmt.Sprint(rec.Creds) != fmt.Sprint(want) {
			t.Errorf("creds = %v, want %v", rec.Creds, want)
		}
	})
}

func TestCredentialsJSON(t *testing.T) {
	type config struct {
		Endpoint    string
		Credentials signer.Credentials
		Ptr         *signer.Credentials
	}
	cfg := config{Endpoint: "https://api.qingcloud.com/iaas/", Credentials: creds, Ptr: &creds}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkRedacted(t, "json.Marshal", string(b))

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "cfg", cfg)
	checkRedacted(t, "slog JSON of a struct holding Credentials", buf.String())

	// Unmarshalling still reads the secret (config loading).
	var got signer.Credentials
	if err := json.Unmarshal([]byte(`{"AccessKeyID":"AK","SecretAccessKey":"SK"}`), &got); err != nil {
		t.Fatal(err)
	}
	if got.AccessKeyID != "AK" || got.SecretAccessKey != "SK" {
		t.Errorf("Unmarshal = %#v fields %q %q", got, got.AccessKeyID, got.SecretAccessKey)
	}
}
