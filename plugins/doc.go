// Package plugins is gitmon's public plugin SDK on hashicorp/go-plugin:
// the handshake, the versioned gRPC protocol, a one-line Serve for plugin
// authors and a test harness.
//
// It is built by the pluggable-runners issue; this file reserves its place
// in the layout of ARCHITECTURE.md.
package plugins
