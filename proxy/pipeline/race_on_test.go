//go:build race

package pipeline

// raceEnabled: the race detector makes sync.Pool drop items at random, so pooled state
// allocates now and then and allocation guards do not hold.
const raceEnabled = true
