package crash

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

// privatePostgres is a PostgreSQL server of this test's own: a cluster
// made by initdb in a temporary directory, on a free port, never the
// shared one. PostgreSQL refuses to run as root, so a root test runs it as
// the postgres user.
type privatePostgres struct {
	bin, dir, addr string
	cred           *syscall.Credential // nil: as this user
	cmd            *exec.Cmd
	exited         chan struct{}
}

func (p *privatePostgres) block() string {
	return fmt.Sprintf(`postgres: {dsn: "postgres://postgres@%s/postgres?sslmode=disable", table: pipe_state}`, p.addr)
}

func startPostgres(t *testing.T) *privatePostgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(bins) == 0 {
		t.Skip("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
	}
	p := &privatePostgres{bin: filepath.Dir(bins[len(bins)-1]), addr: freeAddr(t)}
	dir, err := os.MkdirTemp("", "pipe-crash-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root and there is no postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	initdb := p.command(filepath.Join(p.bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres",
		"--auth=trust", "--no-sync", "-E", "UTF8")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.start(t)
	t.Cleanup(func() {
		if p.cmd != nil {
			p.kill(t)
		}
	})
	return p
}

func (p *privatePostgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	return cmd
}

// start runs the postmaster and waits until it accepts connections (after
// crash recovery, on a restart).
func (p *privatePostgres) start(t *testing.T) {
	t.Helper()
	_, port, _ := net.SplitHostPort(p.addr)
	p.cmd = p.command(filepath.Join(p.bin, "postgres"), "-D", filepath.Join(p.dir, "data"), "-p", port,
		"-k", p.dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on")
	log, err := os.OpenFile(filepath.Join(p.dir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(p.cmd, p.exited)
	dsn := fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", p.addr)
	poll(t, "the private PostgreSQL to accept connections", func() bool {
		select {
		case <-p.exited:
			b, _ := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
			t.Fatalf("the private PostgreSQL exited:\n%s", b)
		default:
		}
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			return false
		}
		c.Close(context.Background())
		return true
	})
}

// kill SIGKILLs the postmaster and every process it forked (each of which
// runs in a session of its own), as a machine crash would, and waits until
// the postmaster is gone.
func (p *privatePostgres) kill(t *testing.T) {
	t.Helper()
	pid := p.cmd.Process.Pid
	children := childrenOf(pid)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	for _, c := range children {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
	<-p.exited
	p.cmd = nil
	poll(t, "the private PostgreSQL's processes to be gone", func() bool {
		for _, c := range children {
			if syscall.Kill(c, 0) == nil && !zombie(c) {
				return false
			}
		}
		return true
	})
}

// childrenOf returns the pids whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	var out []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		c, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if ppid, ok := parentOf(c); ok && ppid == pid {
			out = append(out, c)
		}
	}
	return out
}

// stat returns the fields of /proc/pid/stat after the command name.
func stat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

func parentOf(pid int) (int, bool) {
	f := stat(pid)
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

func zombie(pid int) bool {
	f := stat(pid)
	return len(f) > 0 && f[0] == "Z"
}
