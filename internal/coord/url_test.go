package coord

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url      string
		addrs    string
		db       int
		user     string
		password string
		tls      bool
		master   string
		cluster  bool
	}{
		{url: "redis://127.0.0.1:6379", addrs: "127.0.0.1:6379"},
		{url: "redis://localhost", addrs: "localhost:6379"},
		{url: "redis://:s3cret@redis:6380/2", addrs: "redis:6380", db: 2, password: "s3cret"},
		{url: "redis://app:s3cret@redis:6379", addrs: "redis:6379", user: "app", password: "s3cret"},
		{url: "rediss://redis.example.com:6380", addrs: "redis.example.com:6380", tls: true},
		{url: " redis://sentinel-0:26379?master_name=mymaster&addr=sentinel-1:26379 ", addrs: "sentinel-0:26379,sentinel-1:26379", master: "mymaster"},
		{url: "redis://node-0:6379?addr=node-1:6379&addr=node-2:6379", addrs: "node-0:6379,node-1:6379,node-2:6379", cluster: true},
		{url: "rediss://:pw@cfg.cache.example.com:6379?cluster=true", addrs: "cfg.cache.example.com:6379", cluster: true, tls: true, password: "pw"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			o, err := ParseURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(o.Addrs, ","); got != tt.addrs {
				t.Errorf("addrs %q, want %q", got, tt.addrs)
			}
			if o.DB != tt.db || o.Username != tt.user || o.Password != tt.password || (o.TLSConfig != nil) != tt.tls ||
				o.MasterName != tt.master || o.IsClusterMode != tt.cluster {
				t.Errorf("options db %d user %q password %q tls %v master %q cluster %v", o.DB, o.Username, o.Password, o.TLSConfig != nil, o.MasterName, o.IsClusterMode)
			}
			if !o.ContextTimeoutEnabled || o.MaxRetries != -1 {
				t.Errorf("commands must honour their context deadlines and not be retried: %+v", o)
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"", "scheme"},
		{"127.0.0.1:6379", "redis://"},
		{"http://redis:6379", `scheme "http"`},
		{"redis://", "no host"},
		{"redis://redis:6379?cluster=maybe", "cluster"},
		{"redis://:hunter2@redis:6379?no_such_option=1", "no_such_option"},
		{"redis://:hunter2@redis:6379/x", "database"},
	} {
		_, err := ParseURL(tt.url)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseURL(%q) = %v; want an error mentioning %q", tt.url, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseURL(%q) error shows the password: %v", tt.url, err)
		}
	}
}

func TestRedact(t *testing.T) {
	if got := Redact("redis://app:hunter2@redis:6379/0"); strings.Contains(got, "hunter2") || !strings.Contains(got, "redis:6379") {
		t.Fatalf("Redact = %q", got)
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"redis://:pw@h:1/0", "rediss://h?cluster=true", "redis://h?master_name=m&addr=x:1", "redis://%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseURL(s)
		if err == nil && len(o.Addrs) == 0 {
			t.Fatalf("ParseURL(%q) has no address", s)
		}
		// A password's text never appears in an error (unless the URL repeats it elsewhere).
		if u, perr := url.Parse(strings.TrimSpace(s)); err != nil && perr == nil && u.User != nil {
			if p, _ := u.User.Password(); len(p) >= 4 && strings.Count(s, p) == 1 && strings.Contains(err.Error(), p) {
				t.Fatalf("ParseURL(%q) error %q shows the password", s, err)
			}
		}
	})
}
