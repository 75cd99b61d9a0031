// Package runners executes an environment's release pipeline for a change,
// stage by stage, with timeouts and cancellation, and holds the catalog
// where built-in runners (exec, http, jenkins) and go-plugin runners
// register behind one Runner interface.
//
// It is built by the daemon issue; this file reserves its place in the
// layout of ARCHITECTURE.md.
package runners
