// Package deploy has no code: its tests check the Kubernetes manifests beside it (strict decoding into
// the Kubernetes API types, plus the invariants the README promises) and ../Dockerfile (BuildKit's own
// parser and lint rules, plus the image's user, ports, healthcheck, entry point and build command).
package deploy
