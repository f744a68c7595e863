package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresReplica is a streaming replica of the test PostgreSQL server: a second server on a
// free port of 127.0.0.1, made with pg_basebackup into a temporary directory. It streams
// through a replication slot of its own, so that a busy test server (every test database
// created is written whole to the WAL) does not recycle WAL the replica has not received yet,
// which would leave it behind for good.
type PostgresReplica struct {
	Port int
	dir  string
	slot string
	cmd  *exec.Cmd
	done chan struct{}
}

// staleSlotAfter is the age after which a replica's replication slot is taken to be left over
// from a crashed run and dropped: a replica lives for one test.
const staleSlotAfter = 15 * time.Minute

var staleSlotRE = regexp.MustCompile(`^cgtest_(\d+)_`)

// dropSlots drops the replication slots of replicas: slot when it is not "", and every
// inactive slot older than staleSlotAfter. A slot still in use by its walsender a moment after
// its replica was killed is waited for.
func dropSlots(ctx context.Context, slot string) error {
	conn, err := adminConn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT slot_name, active FROM pg_replication_slots WHERE slot_name LIKE 'cgtest\_%'`)
	if err != nil {
		return err
	}
	type slotRow struct {
		Name   string `db:"slot_name"`
		Active bool   `db:"active"`
	}
	slots, err := pgx.CollectRows(rows, pgx.RowToStructByName[slotRow])
	if err != nil {
		return err
	}
	for _, sl := range slots {
		if sl.Name == slot {
			for sl.Active && ctx.Err() == nil {
				time.Sleep(50 * time.Millisecond) // polling the slot until its walsender is gone
				_ = conn.QueryRow(ctx, `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&sl.Active)
			}
		} else if m := staleSlotRE.FindStringSubmatch(sl.Name); m == nil || sl.Active {
			continue
		} else if ts, _ := strconv.ParseInt(m[1], 10, 64); time.Since(time.Unix(ts, 0)) < staleSlotAfter {
			continue
		}
		if _, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1`, sl.Name); err != nil {
			return fmt.Errorf("drop replication slot %s: %w", sl.Name, err)
		}
	}
	return nil
}

const howToAllowReplication = "the test server must accept replication connections from 127.0.0.1: " +
	"add `host replication all 127.0.0.1/32 trust` to its pg_hba.conf (on Debian " +
	"/etc/postgresql/15/main/pg_hba.conf) and reload it (SELECT pg_reload_conf()); .ci/run does this"

// NewPostgresReplica starts a streaming replica of the test server, stopped and removed when
// the test ends. Tests running as root run the replica as the postgres user, since PostgreSQL
// refuses to run as root.
func NewPostgresReplica(tb testing.TB) *PostgresReplica {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, limits, err := postgresBin(ctx)
	if err != nil {
		tb.Fatalf("testenv: replica: %v", err)
	}
	dir, err := os.MkdirTemp("", "cgtest-pg-replica-")
	if err != nil {
		tb.Fatal(err)
	}
	r := &PostgresReplica{dir: dir, slot: fmt.Sprintf("cgtest_%d_%s", time.Now().Unix(), RandomHex(4)), done: make(chan struct{})}
	tb.Cleanup(func() {
		r.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dropSlots(ctx, r.slot); err != nil {
			tb.Errorf("testenv: replica: %v", err)
		}
	})
	if err := dropSlots(ctx, ""); err != nil {
		tb.Fatalf("testenv: replica: %v", err)
	}
	owner, chown, err := runAs(dir)
	if err != nil {
		tb.Fatalf("testenv: replica: %v", err)
	}
	cfg, err := pgx.ParseConfig(adminURL())
	if err != nil {
		tb.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	// A busy test server (every test creates a database, which writes it whole to the WAL)
	// may recycle WAL the backup still streams, or end its temporary slot: try again.
	for attempt := 1; ; attempt++ {
		backup := owner(exec.CommandContext(ctx, filepath.Join(bin, "pg_basebackup"),
			"-h", cfg.Host, "-p", strconv.Itoa(int(cfg.Port)), "-U", cfg.User,
			"-D", data, "-X", "stream", "-R", "--checkpoint=fast", "--no-sync", "-C", "-S", r.slot))
		out, err := backup.CombinedOutput()
		if err == nil {
			break
		}
		msg := fmt.Sprintf("pg_basebackup: %v\n%s", err, out)
		if strings.Contains(string(out), "replication connection") || strings.Contains(string(out), "pg_hba.conf") {
			tb.Fatalf("testenv: replica: %s\n%s", msg, howToAllowReplication)
		}
		if attempt == 3 {
			tb.Fatalf("testenv: replica: %s", msg)
		}
		_ = os.RemoveAll(data)
		if err := dropSlots(ctx, r.slot); err != nil { // made by the failed attempt
			tb.Fatalf("testenv: replica: %v", err)
		}
	}
	// A Debian server keeps its configuration outside the data directory: give the replica
	// its own (the settings pg_basebackup -R wrote, primary_conninfo, are in postgresql.auto.conf).
	conf := "listen_addresses = '127.0.0.1'\nunix_socket_directories = '" + dir + "'\nhot_standby = on\n" +
		"shared_buffers = 16MB\nfsync = off\nwal_receiver_status_interval = 1s\n" + limits
	hba := "local all all trust\nhost all all 127.0.0.1/32 trust\n"
	for name, text := range map[string]string{"postgresql.conf": conf, "pg_hba.conf": hba, "pg_ident.conf": ""} {
		path := filepath.Join(data, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			tb.Fatal(err)
		}
		if err := chown(path); err != nil {
			tb.Fatal(err)
		}
	}
	if r.Port, err = freePort(); err != nil {
		tb.Fatal(err)
	}
	var log SyncBuffer
	r.cmd = owner(exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(r.Port)))
	r.cmd.Stdout, r.cmd.Stderr = &log, &log
	setParentDeathSignal(r.cmd)
	if err := r.cmd.Start(); err != nil {
		tb.Fatalf("testenv: replica: start postgres: %v", err)
	}
	go func() {
		_ = r.cmd.Wait()
		close(r.done)
	}()
	for {
		conn, err := pgx.Connect(ctx, r.URL("postgres"))
		if err == nil {
			var recovering bool
			err = conn.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&recovering)
			conn.Close(ctx)
			if err == nil && recovering {
				return r
			}
		}
		select {
		case <-r.done:
			tb.Fatalf("testenv: replica exited:\n%s", log.String())
		case <-ctx.Done():
			tb.Fatalf("testenv: replica not up within 2 minutes: %v\n%s", err, log.String())
		case <-time.After(50 * time.Millisecond): // polling the replica until it answers
		}
	}
}

// URL returns the URL of database name on the replica.
func (r *PostgresReplica) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", r.Port, name)
}

// Stop ends the replica's server at once, as a crash would, and waits for it.
func (r *PostgresReplica) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

func (r *PostgresReplica) stop() {
	r.Stop()
	_ = os.RemoveAll(r.dir)
}

// postgresBin returns the directory of the PostgreSQL programs of the test server's version,
// and the server's settings that a replica may not set lower, as configuration lines.
func postgresBin(ctx context.Context) (dir, limits string, err error) {
	conn, err := adminConn(ctx)
	if err != nil {
		return "", "", err
	}
	defer conn.Close(ctx)
	var num int
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&num); err != nil {
		return "", "", err
	}
	rows, err := conn.Query(ctx, `SELECT name || ' = ' || setting FROM pg_settings WHERE name IN
		('max_connections', 'max_worker_processes', 'max_wal_senders', 'max_prepared_transactions', 'max_locks_per_transaction')`)
	if err != nil {
		return "", "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", "", err
	}
	limits = strings.Join(lines, "\n") + "\n"
	dir = fmt.Sprintf("/usr/lib/postgresql/%d/bin", num/10000)
	if _, err := os.Stat(filepath.Join(dir, "pg_basebackup")); err == nil {
		return dir, limits, nil
	}
	path, err := exec.LookPath("pg_basebackup")
	if err != nil {
		return "", "", fmt.Errorf("pg_basebackup of PostgreSQL %d not found in %s or on PATH: install the server's tools", num/10000, dir)
	}
	return filepath.Dir(path), limits, nil
}

// runAs returns how to run a command so that PostgreSQL accepts it, and how to give a file to
// the user it runs as: the postgres user when the tests run as root (dir is given to it then),
// the tests' own otherwise.
func runAs(dir string) (run func(*exec.Cmd) *exec.Cmd, chown func(string) error, err error) {
	if os.Geteuid() != 0 {
		return func(c *exec.Cmd) *exec.Cmd { return c }, func(string) error { return nil }, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, nil, fmt.Errorf("tests run as root, and PostgreSQL refuses to: no postgres user to run it as (%w)", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	chown = func(path string) error { return os.Chown(path, uid, gid) }
	if err := chown(dir); err != nil {
		return nil, nil, err
	}
	return func(c *exec.Cmd) *exec.Cmd { return asUser(c, uint32(uid), uint32(gid)) }, chown, nil
}
