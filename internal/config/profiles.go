package config

import (
	"crypto/sha256"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

// credentials resolves the default profile's key pair. The access key and the secret must come from
// the same place: the file, or flags and variables; a key from one with a secret from the other would
// be two different accounts' halves.
func (l *loader) credentials() signer.Credentials {
	key := l.get(SettingAccessKey)
	var secret value
	s := settingByName(SettingSecretKey)
	switch {
	case l.visited[s.flag]:
		path := strings.TrimSpace(*l.flags[SettingSecretKey])
		secret = l.record(SettingSecretKey, value{src: "-" + s.flag, set: true})
		b, err := os.ReadFile(path)
		if err != nil {
			l.fail("-%s: %v", s.flag, err)
			break
		}
		secret.v = strings.TrimSpace(string(b))
		if secret.v == "" {
			l.fail("-%s: the file %s is empty", s.flag, path)
		}
	default:
		secret = l.get(SettingSecretKey)
		if secret.fromFile {
			// get resolved it as a path (for -secret-key-file); the file key holds the secret itself.
			secret.v = l.file.values[s.file].value
		}
	}
	switch {
	case key.v != "" && secret.v == "":
		l.fail("%s sets an access key but no secret key is set: set QINGCLOUD_SECRET_KEY, -secret-key-file or qy_secret_access_key in the config file", key.src)
	case key.v == "" && secret.v != "":
		l.fail("%s sets a secret key but no access key is set: set QINGCLOUD_ACCESS_KEY, -access-key or qy_access_key_id in the config file", secret.src)
	case key.v != "" && key.fromFile != secret.fromFile:
		fileSide, otherSide := key, secret
		if secret.fromFile {
			fileSide, otherSide = secret, key
		}
		l.fail("%s overrides one half of the key pair in %s; set both the access key and the secret key by flags or variables", otherSide.src, strings.SplitN(fileSide.src, ":", 2)[0])
	}
	return signer.Credentials{AccessKeyID: key.v, SecretAccessKey: secret.v}
}

var profileNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// profiles builds the default profile and qingcloud_grpc.profiles.
func (l *loader) profiles() {
	c := l.c
	var named []Profile
	if l.file != nil {
		for _, fp := range l.file.sortedProfiles() {
			at := func(key string) string {
				if fv, ok := fp.values[key]; ok {
					return l.file.at(fv.line, Section+".profiles."+fp.name+"."+key)
				}
				return l.file.at(fp.line, Section+".profiles."+fp.name)
			}
			switch {
			case fp.name == DefaultProfile:
				l.fail("%s: the profile name %q is reserved for the top-level keys (qy_access_key_id, ...); choose another name", at(""), DefaultProfile)
				continue
			case !profileNameRE.MatchString(fp.name):
				l.fail("%s: a profile name must be letters, digits, '_', '.' and '-' (at most 63)", at(""))
				continue
			}
			p := Profile{Name: fp.name, Zone: c.Zone}
			p.Credentials.AccessKeyID = fp.values["qy_access_key_id"].value
			secret, hasSecret := fp.values["qy_secret_access_key"]
			secretFile, hasFile := fp.values["secret_access_key_file"]
			switch {
			case hasSecret && hasFile:
				l.fail("%s: set qy_secret_access_key or secret_access_key_file, not both", at("secret_access_key_file"))
			case hasFile:
				b, err := os.ReadFile(l.file.resolve(secretFile.value))
				if err != nil {
					l.fail("%s: %v", at("secret_access_key_file"), err)
				} else if p.Credentials.SecretAccessKey = strings.TrimSpace(string(b)); p.Credentials.SecretAccessKey == "" {
					l.fail("%s: the file is empty", at("secret_access_key_file"))
				}
			case hasSecret:
				p.Credentials.SecretAccessKey = secret.value
			}
			switch {
			case p.Credentials.AccessKeyID != "" && p.Credentials.SecretAccessKey == "" && !hasFile:
				l.fail("%s: the profile has an access key but no qy_secret_access_key or secret_access_key_file", at("qy_access_key_id"))
			case p.Credentials.AccessKeyID == "" && (hasSecret || hasFile):
				l.fail("%s: the profile has a secret key but no qy_access_key_id", at(""))
			}
			if fv, ok := fp.values["zone"]; ok {
				p.Zone = l.zone(value{v: fv.value, src: at("zone")})
			}
			req, win := value{}, value{}
			if fv, ok := fp.values["quota_requests"]; ok {
				req = value{v: fv.value, src: at("quota_requests"), set: true}
			}
			if fv, ok := fp.values["quota_window"]; ok {
				win = value{v: fv.value, src: at("quota_window"), set: true}
			}
			p.Quota = l.quota(req, win, c.Quota)
			named = append(named, p)
		}
	}
	emulated := c.Credentials.AccessKeyID == ""
	for _, p := range named {
		if p.Credentials.AccessKeyID != "" {
			emulated = false
		}
	}
	if !emulated {
		for _, p := range named {
			if p.Credentials.AccessKeyID == "" {
				l.fail("%s: the profile has no qy_access_key_id (only when no keys are configured anywhere do profiles run on the built-in emulator)",
					l.file.at(profileLine(l.file, p.Name), Section+".profiles."+p.Name))
			}
		}
	}
	if c.Credentials.AccessKeyID != "" || emulated {
		c.Profiles = append(c.Profiles, Profile{Name: DefaultProfile, Credentials: c.Credentials, Zone: c.Zone, Quota: c.Quota})
	}
	c.Profiles = append(c.Profiles, named...)
}

// sharedKeys checks that profiles sharing an access key agree on its quota budget: the budget belongs
// to the key, not to the profile.
func (l *loader) sharedKeys() {
	first := map[string]Profile{}
	for _, p := range l.c.Profiles {
		k := p.Credentials.AccessKeyID
		if k == "" {
			continue
		}
		if q, ok := first[k]; ok && q.Quota != p.Quota {
			l.fail("profiles %s and %s use the same access key %s but different quota budgets (%d per %v, %d per %v); the budget belongs to the key: give them the same quota_requests and quota_window",
				q.Name, p.Name, k, q.Quota.Requests, q.Quota.Window, p.Quota.Requests, p.Quota.Window)
			continue
		}
		first[k] = p
	}
}

func profileLine(f *fileData, name string) int {
	for _, p := range f.profiles {
		if p.name == name {
			return p.line
		}
	}
	return 0
}

// hasProfile reports whether callers can act as profile.
func (l *loader) hasProfile(name string) bool {
	for _, p := range l.c.Profiles {
		if p.Name == name {
			return true
		}
	}
	return false
}

// tokens reads -token-sha256 / QINGCLOUD_TOKEN_SHA256 (default profile) and qingcloud_grpc.tokens.
func (l *loader) tokens() {
	c := l.c
	seen := map[[sha256.Size]byte]string{}
	names := map[string]string{}
	add := func(t auth.Token, src string) {
		if other, dup := seen[t.Hash]; dup {
			l.fail("%s: the same token hash is also given by %s", src, other)
			return
		}
		if other, dup := names[t.Name]; dup {
			l.fail("%s: the token name %q is also used by %s", src, t.Name, other)
			return
		}
		seen[t.Hash], names[t.Name] = src, src
		c.Tokens = append(c.Tokens, t)
	}
	if v := l.get(SettingTokenSHA256); v.v != "" {
		for i, h := range strings.Split(v.v, ",") {
			src := fmt.Sprintf("%s (hash %d)", v.src, i+1)
			hash, err := auth.ParseHash(h)
			if err != nil {
				l.fail("%s: %v", src, err)
				continue
			}
			if !l.hasProfile(DefaultProfile) {
				l.fail("%s: these tokens act as the default profile, which has no QingCloud keys (set qy_access_key_id and qy_secret_access_key, or QINGCLOUD_ACCESS_KEY and QINGCLOUD_SECRET_KEY)", src)
				continue
			}
			add(auth.Token{Name: fmt.Sprintf("%s#%d", strings.TrimPrefix(v.src, "-"), i+1), Hash: hash, Profile: DefaultProfile}, src)
		}
	}
	if l.file != nil {
		l.fileTokens(add)
	}
	if len(c.Tokens) == 0 && !l.hasProfile(DefaultProfile) && len(l.errs) == 0 {
		l.fail("%s: profiles are configured but no bearer tokens: callers without a token act as the default profile, which has no QingCloud keys; add %s.tokens naming the profiles, or set the top-level keys",
			l.file.at(profileLine(l.file, c.Profiles[0].Name), Section+".profiles"), Section)
	}
}

// fileTokens reads qingcloud_grpc.tokens.
func (l *loader) fileTokens(add func(auth.Token, string)) {
	for _, ft := range l.file.tokens {
		key := fmt.Sprintf("%s.tokens[%d]", Section, ft.index)
		at := func(k string) string {
			if fv, ok := ft.values[k]; ok {
				return l.file.at(fv.line, key+"."+k)
			}
			return l.file.at(ft.line, key)
		}
		t := auth.Token{Name: ft.values["name"].value, Profile: ft.values["profile"].value}
		if t.Name == "" {
			t.Name = key
		}
		if t.Profile == "" {
			t.Profile = DefaultProfile
		}
		hv, ok := ft.values["sha256"]
		if !ok || hv.value == "" {
			l.fail("%s: the token has no sha256 (the SHA-256 of the token, from `server hash-token`)", at(""))
			continue
		}
		hash, err := auth.ParseHash(hv.value)
		if err != nil {
			l.fail("%s: %v", at("sha256"), err)
			continue
		}
		if !l.hasProfile(t.Profile) {
			if t.Profile == DefaultProfile {
				l.fail("%s: the token acts as the default profile, which has no QingCloud keys; name a profile of %s.profiles or set the top-level keys", at("profile"), Section)
			} else {
				l.fail("%s: no profile %q in %s.profiles", at("profile"), t.Profile, Section)
			}
			continue
		}
		t.Hash = hash
		add(t, at("sha256"))
	}
}
