// Package monitor watches repositories: it polls refs cheaply, fetches only
// a branch whose tip moved, walks its first-parent history since the last
// processed commit, detects force-pushes and emits Changes. It knows
// nothing of policy or runners.
//
// It is built by the daemon issue; this file reserves its place in the
// layout of ARCHITECTURE.md.
package monitor
