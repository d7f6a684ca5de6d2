// Package deploy has no code: its test checks the Kubernetes manifests beside it (strict decoding
// into the Kubernetes API types, plus the invariants the README promises).
package deploy
