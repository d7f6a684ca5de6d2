package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth"
)

// hashToken prints the SHA-256 (hex) of a bearer token read from stdin: the value the config file
// stores (qingcloud_grpc.tokens[].sha256, or QINGCLOUD_TOKEN_SHA256). With -generate it makes a new
// random token and prints both. The token is read from stdin, not an argument, so that it stays out of
// shell history and process lists.
func hashToken(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("hash-token", flag.ContinueOnError)
	// The flag package's own messages quote the argument, which may be a token that starts with '-'.
	fs.SetOutput(io.Discard)
	generate := fs.Bool("generate", false, "generate a new random token and print it with its hash")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "Usage: server hash-token [-generate]  (reads the token from stdin)")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errors.New("hash-token: the only flag is -generate; the token is read from stdin, not from arguments (e.g. `server hash-token < token.txt`)")
	}
	if fs.NArg() > 0 {
		return errors.New("hash-token: the token is read from stdin, not from arguments (e.g. `server hash-token < token.txt`)")
	}
	if *generate {
		token := auth.GenerateToken()
		fmt.Fprintf(stdout, "token:  %s\nsha256: %s\n", token, auth.HashToken(token))
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(stdin, 4096))
	if err != nil {
		return fmt.Errorf("hash-token: read stdin: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return errors.New("hash-token: no token on stdin (e.g. `server hash-token < token.txt`, or `server hash-token -generate`)")
	}
	if strings.ContainsAny(token, "\r\n") {
		return errors.New("hash-token: stdin holds more than one line; give one token")
	}
	if err := auth.CheckToken(token); err != nil {
		return fmt.Errorf("hash-token: %w", err)
	}
	fmt.Fprintln(stdout, auth.HashToken(token))
	return nil
}
