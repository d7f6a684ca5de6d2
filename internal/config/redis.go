package config

import (
	"os"
	"strconv"
	"strings"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/coord"
)

// Redis is the Redis the replicas of the server share (docs/scale-out.md).
type Redis struct {
	// URL is the redis_url (coord.ParseURL); empty: the server runs alone, without Redis. It may hold
	// a password: log it only through coord.Redact.
	URL string
	// Password is read from redis_password_file; empty: the URL's, if any.
	Password string
	// FallbackShare is redis_fallback_share; 0: 1 / the replicas last seen alive.
	FallbackShare float64
}

// redis reads the Redis settings.
func (l *loader) redis() {
	r := &l.c.Redis
	u := l.get(SettingRedisURL)
	r.URL = u.v
	if r.URL != "" {
		if _, err := coord.ParseURL(r.URL); err != nil {
			l.fail("%s: Redis URL %s: %v", u.src, coord.Redact(r.URL), err)
		}
	}
	if pf := l.get(SettingRedisPasswordFile); pf.v != "" {
		b, err := os.ReadFile(pf.v)
		switch {
		case err != nil:
			l.fail("%s: %v", pf.src, err)
		case strings.TrimSpace(string(b)) == "":
			l.fail("%s: the file %s is empty", pf.src, pf.v)
		default:
			r.Password = strings.TrimSpace(string(b))
		}
		if r.URL == "" {
			l.fail("%s sets a Redis password file but no Redis URL is set: set -redis-url too", pf.src)
		}
	}
	if fs := l.get(SettingRedisFallbackShare); fs.v != "" {
		f, err := strconv.ParseFloat(fs.v, 64)
		if err != nil || !(f > 0 && f <= 1) {
			l.fail("%s: fallback share %q must be a number in (0, 1], e.g. 0.5", fs.src, fs.v)
		}
		r.FallbackShare = f
	}
}
