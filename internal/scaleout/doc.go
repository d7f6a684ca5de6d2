// Package scaleout holds the end-to-end tests of several server replicas coordinated through Redis
// (docs/scale-out.md): real server processes (cmd/server, built once), one standalone emulator
// (cmd/emulator) and one real redis-server. It has no code of its own.
package scaleout
