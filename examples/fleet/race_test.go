//go:build race

package main

// raceEnabled says the tests run with the race detector: the program they
// build has it too.
const raceEnabled = true
