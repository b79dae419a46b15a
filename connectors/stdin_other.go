//go:build !unix

package connectors

import "os"

// interruptible returns f: deadlines on standard input are a unix matter.
func interruptible(f *os.File) (*os.File, func()) { return f, func() {} }
