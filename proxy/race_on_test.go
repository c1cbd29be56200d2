//go:build race

package proxy

// raceEnabled: the race detector's instrumentation allocates, so allocation guards skip.
const raceEnabled = true
