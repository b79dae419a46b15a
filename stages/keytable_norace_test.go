//go:build !race

package stages

// raceEnabled shrinks tests whose size only makes them slow under -race.
const raceEnabled = false
