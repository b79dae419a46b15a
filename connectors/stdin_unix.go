//go:build unix

package connectors

import (
	"os"
	"syscall"
	"time"
)

// interruptible returns a file reading the same input as f whose blocked
// reads a read deadline interrupts, and a func that undoes it. A pipe or
// terminal that the process inherited in blocking mode (standard input
// almost always is) ignores SetReadDeadline, so a read with nothing to read
// would outlast the soft stop. interruptible then reads through a duplicate
// descriptor set to non-blocking mode, which Go's poller waits on; restore
// puts the shared open file back into blocking mode for whoever reads it
// next (the shell, for a terminal). Regular files never block and are
// returned as they are, as is f when it already honours deadlines.
func interruptible(f *os.File) (*os.File, func()) {
	if f.SetReadDeadline(time.Time{}) == nil {
		return f, func() {}
	}
	if st, err := f.Stat(); err != nil || st.Mode().IsRegular() {
		return f, func() {}
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return f, func() {}
	}
	fd := -1
	if err := sc.Control(func(s uintptr) { fd, err = syscall.Dup(int(s)) }); err != nil || fd < 0 {
		return f, func() {}
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = syscall.Close(fd)
		return f, func() {}
	}
	nf := os.NewFile(uintptr(fd), f.Name())
	return nf, func() {
		_ = syscall.SetNonblock(fd, false)
		_ = nf.Close()
	}
}
