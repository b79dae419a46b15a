//go:build unix

package connectors

import "syscall"

// writable reports whether the process may write path (a file, or a
// directory to create files in), as access(2) answers.
func writable(path string) error {
	const wOK = 0x2
	return syscall.Access(path, wOK)
}
