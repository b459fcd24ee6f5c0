//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package transcribe

import (
	"errors"
	"os"
)

// errLocked is lockFile's error when another open file holds the lock.
var errLocked = errors.New("locked")

// lockFile does nothing on systems without flock(2) (Windows, Solaris,
// AIX, …): there an output directory is not locked, and two batches
// writing into one must be avoided by their users.
func lockFile(*os.File) error { return nil }
