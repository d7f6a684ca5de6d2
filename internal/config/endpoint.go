package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// endpoint resolves the API URL: -endpoint, QINGCLOUD_ENDPOINT, the file's protocol/host/port/uri,
// or the default.
func (l *loader) endpoint() string {
	s := settingByName(SettingEndpoint)
	var v value
	switch {
	case l.visited[s.flag]:
		v = l.record(SettingEndpoint, value{v: strings.TrimSpace(*l.flags[SettingEndpoint]), src: "-" + s.flag})
	case l.getenv(s.env) != "":
		v = l.record(SettingEndpoint, value{v: strings.TrimSpace(l.getenv(s.env)), src: s.env})
	case l.file != nil && l.fileHasEndpoint():
		ep, src, err := l.fileEndpoint()
		l.record(SettingEndpoint, value{src: src})
		if err != nil {
			l.fail("%s: %v", src, err)
			return ""
		}
		return ep
	default:
		return DefaultEndpoint
	}
	if err := checkEndpoint(v.v); err != nil {
		l.fail("%s: endpoint %q %v, such as %s", v.src, redactURL(v.v), err, DefaultEndpoint)
	}
	return v.v
}

var endpointKeys = []string{"protocol", "host", "port", "uri"}

func (l *loader) fileHasEndpoint() bool {
	for _, k := range endpointKeys {
		if _, ok := l.file.values[k]; ok {
			return true
		}
	}
	return false
}

// fileEndpoint builds the endpoint from the file as QingCloud's Go SDK does.
func (l *loader) fileEndpoint() (string, string, error) {
	var given []string
	vals := map[string]string{}
	for _, k := range endpointKeys {
		if fv, ok := l.file.values[k]; ok {
			vals[k] = fv.value
			given = append(given, k)
		}
	}
	sort.Slice(given, func(i, j int) bool { return l.file.values[given[i]].line < l.file.values[given[j]].line })
	line := l.file.values[given[0]].line
	src := l.file.at(line, strings.Join(given, ", "))
	port := 0
	if p, ok := vals["port"]; ok && p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return "", l.file.at(l.file.values["port"].line, "port"), fmt.Errorf("port %q must be a number from 1 to 65535", p)
		}
		port = n
	}
	ep, err := BuildEndpoint(vals["protocol"], vals["host"], port, vals["uri"])
	return ep, src, err
}

// BuildEndpoint builds an API URL from the official config file's keys, as QingCloud's Go SDK does:
// protocol://host:port followed by uri, with repeated slashes collapsed. Empty values take the SDK's
// defaults: protocol https, host api.qingcloud.com, port 443 for https and 80 for http, uri /iaas.
func BuildEndpoint(protocol, host string, port int, uri string) (string, error) {
	protocol = strings.ToLower(strings.TrimSpace(protocol))
	if protocol == "" {
		protocol = "https"
	}
	if protocol != "https" && protocol != "http" {
		return "", fmt.Errorf("protocol %q must be https or http", protocol)
	}
	host = strings.TrimSpace(host)
	if host == "" {
		host = "api.qingcloud.com"
	}
	if strings.ContainsAny(host, "/?#@ ") {
		return "", fmt.Errorf("host %q must be a host name or IP address only", host)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if port == 0 {
		port = 443
		if protocol == "http" {
			port = 80
		}
	}
	uri = strings.TrimSpace(uri)
	if uri == "" {
		uri = "/iaas"
	}
	path := "/" + uri
	for strings.Contains(path, "//") {
		path = strings.ReplaceAll(path, "//", "/")
	}
	ep := protocol + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path
	if err := checkEndpoint(ep); err != nil {
		return "", fmt.Errorf("the endpoint %q they make %v", ep, err)
	}
	return ep, nil
}

// redactURL hides a password in a URL given by mistake.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return s
}

// checkEndpoint accepts an http(s) URL with a host and no user information, query or fragment.
func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("is not a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("must be an http or https URL")
	case u.Hostname() == "":
		return errors.New("must name a host")
	case u.User != nil:
		return errors.New("must not carry user information (keys are separate settings)")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("must not have a query or fragment")
	}
	return nil
}
