package api

import (
	"strings"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

// reserved is THE list of parameters a caller can never supply (CallService refuses them), each with
// the reason the caller is told: the server sets them, or they take part in authentication. To
// reserve another name, add its row here.
var reserved = map[string]string{
	"action":                     "set the action with the action field",
	"zone":                       "set the zone with the zone field",
	"token":                      "credentials are the server's",
	signer.ParamAccessKeyID:      "credentials are the server's",
	signer.ParamSignature:        "requests are signed by the server",
	signer.ParamSignatureMethod:  "requests are signed by the server",
	signer.ParamSignatureVersion: "requests are signed by the server",
	signer.ParamTimeStamp:        "requests are signed by the server",
	// QingCloud honours a signed expires in place of the 60 s time_stamp window: a request signed
	// with a far expires could be replayed for as long.
	"expires": "requests are signed by the server, and expire 60 s after their time_stamp",
}

// Reserved reports whether a caller may not pass the parameter name (in any letter case), and why.
func Reserved(name string) (why string, ok bool) {
	why, ok = reserved[strings.ToLower(name)]
	return why, ok
}
