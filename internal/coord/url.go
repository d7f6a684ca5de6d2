package coord

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client timeouts: a replica must never wait long on Redis (it falls back instead), so every
// command's context carries a short deadline, and these bound what no context covers.
const (
	dialTimeout = 2 * time.Second
	ioTimeout   = 2 * time.Second
)

// ParseURL turns a redis_url into go-redis universal options:
//
//   - redis://[user:password@]host:port[/db] is one server; rediss:// is the same over TLS (1.2 or
//     later, the server's certificate checked against the system roots and the host name);
//   - a master_name=NAME parameter makes host:port (and every addr=host:port parameter) Sentinels
//     watching master NAME; the URL's user information is used for the master and the Sentinels;
//   - cluster=true, or more than one address (addr=host:port parameters), makes a Redis Cluster.
//
// Other parameters are go-redis's own (dial_timeout, pool_size, ...). The password in the URL, if
// any, is used unless the password file sets one. Errors never contain the password.
func ParseURL(raw string) (*redis.UniversalOptions, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, errors.New("not a URL (redis://host:port or rediss://host:port)")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("scheme %q is not redis or rediss", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("has no host (redis://host:port)")
	}
	q := u.Query()
	cluster := false
	if v := q.Get("cluster"); v != "" {
		switch v {
		case "true", "1":
			cluster = true
		case "false", "0":
		default:
			return nil, fmt.Errorf("cluster=%q is not true or false", v)
		}
		q.Del("cluster")
	}
	cluster = cluster || len(q["addr"]) > 0 && q.Get("master_name") == ""
	u.RawQuery = q.Encode()
	s := u.String()

	var o *redis.UniversalOptions
	switch {
	case q.Get("master_name") != "":
		f, err := redis.ParseFailoverURL(s)
		if err != nil {
			return nil, redact(err, u)
		}
		o = &redis.UniversalOptions{
			Addrs: f.SentinelAddrs, MasterName: f.MasterName, DB: f.DB, TLSConfig: f.TLSConfig,
			Username: f.SentinelUsername, Password: f.SentinelPassword,
			SentinelUsername: f.SentinelUsername, SentinelPassword: f.SentinelPassword,
			ClientName: f.ClientName, PoolSize: f.PoolSize,
		}
	case cluster:
		c, err := redis.ParseClusterURL(s)
		if err != nil {
			return nil, redact(err, u)
		}
		o = &redis.UniversalOptions{
			Addrs: c.Addrs, IsClusterMode: true, TLSConfig: c.TLSConfig,
			Username: c.Username, Password: c.Password, ClientName: c.ClientName, PoolSize: c.PoolSize,
		}
	default:
		c, err := redis.ParseURL(s)
		if err != nil {
			return nil, redact(err, u)
		}
		o = &redis.UniversalOptions{
			Addrs: []string{c.Addr}, DB: c.DB, TLSConfig: c.TLSConfig,
			Username: c.Username, Password: c.Password, ClientName: c.ClientName, PoolSize: c.PoolSize,
		}
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = dialTimeout, ioTimeout, ioTimeout
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1 // a failed command falls back; it is not repeated
	return o, nil
}

// Redact returns raw with any password replaced by "xxxxx", for logs.
func Redact(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// redact wraps a go-redis parse error, removing the URL's password from its text.
func redact(err error, u *url.URL) error {
	msg := err.Error()
	if p, ok := u.User.Password(); ok && p != "" {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	return errors.New(strings.TrimPrefix(msg, "redis: "))
}
