package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Postgres is a throwaway PostgreSQL server for scenario c's Listmonk leg:
// a fresh cluster in a temporary directory, reachable only through a unix
// socket in that directory (no TCP listener), trust authentication for its
// one superuser, removed on Stop.
//
// PostgreSQL refuses to run as root. When the harness is root, initdb and
// the server run as an unprivileged user ("postgres" if it exists, else
// "nobody") through syscall credentials on the child process, and the
// directory is owned by that user; otherwise they run as the harness's
// own user.
type Postgres struct {
	// SocketDir is the unix socket directory (libpq's host).
	SocketDir string
	// Port names the socket file (.s.PGSQL.<port>).
	Port int
	// User is the superuser, also the name of the database created.
	User string

	bin     string
	dir     string
	cred    *syscall.Credential
	cmd     *exec.Cmd
	done    chan struct{}
	logFile *os.File
}

// pgBinDir finds a directory holding initdb and postgres: $LISTMONK_PG_BIN,
// then the newest /usr/lib/postgresql/*/bin, then PATH.
func pgBinDir() (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres", "psql"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if d := os.Getenv("LISTMONK_PG_BIN"); d != "" {
		if !has(d) {
			return "", fmt.Errorf("LISTMONK_PG_BIN=%s does not hold initdb, postgres and psql", d)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return pgMajor(b) - pgMajor(a) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if has(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries (initdb, postgres, psql) in $LISTMONK_PG_BIN, /usr/lib/postgresql/*/bin or PATH")
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// pgCredential returns the credential to run PostgreSQL with: nil when the
// harness is not root.
func pgCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return nil, errors.New("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")
}

// StartPostgres creates a cluster and starts its server, waiting until it
// accepts connections. logDir receives postgres.log.
func StartPostgres(ctx context.Context, logDir string) (_ *Postgres, err error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := pgCredential()
	if err != nil {
		return nil, err
	}
	// Its own temporary directory: the harness's is private to root.
	dir, err := os.MkdirTemp("", "carenotify-bench-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{SocketDir: dir, Port: 5432, User: "listmonk", bin: bin, dir: dir, cred: cred}
	defer func() {
		if err != nil {
			p.Stop()
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	var out bytes.Buffer
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", p.User,
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.Stdout, initdb.Stderr = &out, &out
	p.asUser(initdb)
	if err := initdb.Run(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, lastLines(out.String(), 5))
	}
	if p.logFile, err = os.Create(filepath.Join(logDir, "postgres.log")); err != nil {
		return nil, err
	}
	// Server settings are the defaults but for the socket-only listener.
	p.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", dir, "-p", strconv.Itoa(p.Port),
		"-c", "listen_addresses=")
	p.cmd.Stdout, p.cmd.Stderr = p.logFile, p.logFile
	p.asUser(p.cmd)
	dieWithParent(p.cmd)
	if p.cred != nil {
		p.cmd.SysProcAttr.Credential = p.cred
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	p.done = make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(p.done) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := p.Exec(ctx, "postgres", "SELECT 1"); err == nil {
			break
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("postgres exited (see %s)", p.logFile.Name())
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("postgres not accepting connections after 30s (see %s)", p.logFile.Name())
		}
	}
	if _, err := p.Exec(ctx, "postgres", "CREATE DATABASE "+p.User); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Postgres) asUser(cmd *exec.Cmd) {
	if p.cred == nil {
		return
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = p.cred
	cmd.Dir = p.dir
}

// PID is the postmaster's process id.
func (p *Postgres) PID() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Exec runs sql (statements separated by semicolons) with psql in database
// db, stopping at the first error, and returns psql's unaligned output.
func (p *Postgres) Exec(ctx context.Context, db, sql string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, "psql"), "-X", "-q", "-A", "-t",
		"-v", "ON_ERROR_STOP=1", "-h", p.SocketDir, "-p", strconv.Itoa(p.Port), "-U", p.User, "-d", db)
	cmd.Stdin = strings.NewReader(sql)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("psql: %w: %s", err, lastLines(errb.String(), 3))
	}
	return strings.TrimSpace(out.String()), nil
}

// Stop shuts the server down (fast shutdown) and removes the cluster.
func (p *Postgres) Stop() {
	if p.cmd != nil && p.cmd.Process != nil && p.done != nil {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if p.logFile != nil {
		_ = p.logFile.Close()
	}
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
}

// lastLines returns the last n non-empty lines of s, joined by " | ".
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
