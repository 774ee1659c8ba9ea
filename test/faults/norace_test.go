//go:build !race

package faults

// raceEnabled: this test binary was built with -race, so binaries it builds
// are too (they then share the build cache with it).
const raceEnabled = false
