package signer_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"net/url"
	"sort"
	"strings"
)

// This file holds independent reference implementations of the signature, written from
// qingcloud-protocol.md §2.1/§2.4 without using the package under test.

// refEscapeNetURL is the §2.4 encoder: url.QueryEscape, then '+' (an encoded space) becomes %20.
func refEscapeNetURL(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// refEscapeBytes is a byte-by-byte encoder built on fmt and a literal unreserved set.
func refEscapeBytes(s string) string {
	const unreservedSet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
	var b strings.Builder
	for _, c := range []byte(s) {
		if strings.IndexByte(unreservedSet, c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// refQuery builds the canonical query with sort.Strings and refEscapeNetURL.
func refQuery(params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	pairs := make([]string, 0, len(keys))
	for _, k := range keys {
		pairs = append(pairs, refEscapeNetURL(k)+"="+refEscapeNetURL(params[k]))
	}
	return strings.Join(pairs, "&")
}

// refStringToSign is method\npath\ncanonical-query.
func refStringToSign(method, path string, params map[string]string) string {
	return method + "\n" + path + "\n" + refQuery(params)
}

// refSignature is base64(HMAC(secret, sts)).
func refSignature(secret, algorithm, sts string) string {
	var h func() hash.Hash
	switch algorithm {
	case "HmacSHA256":
		h = sha256.New
	case "HmacSHA1":
		h = sha1.New
	default:
		panic("refSignature: algorithm " + algorithm)
	}
	m := hmac.New(h, []byte(secret))
	m.Write([]byte(sts))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// refSign returns the encoded request (canonical query plus "&signature=...") for params that already
// carry every auth parameter including time_stamp.
func refSign(method, path string, params map[string]string, secret string) string {
	sts := refStringToSign(method, path, params)
	return refQuery(params) + "&signature=" + url.QueryEscape(refSignature(secret, params["signature_method"], sts))
}
