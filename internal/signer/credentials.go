package signer

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
)

// redacted replaces the secret access key wherever Credentials are printed or logged.
const redacted = "[REDACTED]"

// Credentials is an access key pair. Its String, GoString, Format and LogValue (slog.LogValuer) never
// reveal the secret (they print the access key id and "[REDACTED]"). MarshalJSON redacts it too, so that
// a struct holding Credentials can be logged by slog's JSON handler; unmarshalling is unaffected.
// Other reflection-based encoders (encoding/gob, encoding/xml, ...) do see the secret.
type Credentials struct {
	// AccessKeyID identifies the key pair; it is sent as access_key_id.
	AccessKeyID string
	// SecretAccessKey keys the HMAC; it is never sent or printed.
	SecretAccessKey string
}

var (
	_ fmt.Stringer   = Credentials{}
	_ fmt.GoStringer = Credentials{}
	_ fmt.Formatter  = Credentials{}
	_ slog.LogValuer = Credentials{}
	_ json.Marshaler = Credentials{}
)

// String returns the access key id and "[REDACTED]" in place of the secret.
func (c Credentials) String() string {
	return "{AccessKeyID:" + c.AccessKeyID + " SecretAccessKey:" + redacted + "}"
}

// GoString returns a Go-syntax representation with the secret replaced by "[REDACTED]"; it is used
// for the %#v verb.
func (c Credentials) GoString() string {
	return "signer.Credentials{AccessKeyID:" + strconv.Quote(c.AccessKeyID) +
		", SecretAccessKey:" + strconv.Quote(redacted) + "}"
}

// Format implements fmt.Formatter so that every verb and flag (%v, %+v, %#v, %s, %q, %x, ...) prints
// the redacted form: %#v prints GoString, %q a quoted String, everything else String.
func (c Credentials) Format(f fmt.State, verb rune) {
	var s string
	switch {
	case verb == 'v' && f.Flag('#'):
		s = c.GoString()
	case verb == 'q':
		s = strconv.Quote(c.String())
	default:
		s = c.String()
	}
	_, _ = f.Write([]byte(s))
}

// LogValue implements slog.LogValuer: a group with access_key_id and a redacted secret_access_key.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("access_key_id", c.AccessKeyID),
		slog.String("secret_access_key", redacted),
	)
}

// MarshalJSON implements json.Marshaler with the same redacted fields as LogValue:
// {"access_key_id":"...","secret_access_key":"[REDACTED]"}.
func (c Credentials) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
	}{c.AccessKeyID, redacted})
	if err != nil {
		return nil, fmt.Errorf("signer: marshal credentials: %w", err)
	}
	return b, nil
}
