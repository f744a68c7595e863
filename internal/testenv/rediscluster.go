package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCluster is a Redis Cluster of local redis-server processes: three masters, each with
// one replica, on free ports of 127.0.0.1, with its files in a temporary directory.
type RedisCluster struct {
	dir   string
	nodes []*ClusterNode
}

// ClusterNode is one redis-server process of a RedisCluster.
type ClusterNode struct {
	Port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has ended
}

// Addr returns the node's address.
func (n *ClusterNode) Addr() string { return "127.0.0.1:" + strconv.Itoa(n.Port) }

// Kill ends the node's process at once, as a crash would, and waits for it to end.
func (n *ClusterNode) Kill() {
	if n.cmd.Process != nil {
		_ = n.cmd.Process.Kill()
	}
	<-n.done
}

// Alive reports whether the node's process is running.
func (n *ClusterNode) Alive() bool {
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

const howToInstallRedis = "install Redis (apt-get install redis-server), whose redis-server and redis-cli the cluster tests run"

// clusterNodeTimeout is the cluster's node timeout: how long a master must be unreachable
// before its replica is promoted. Short, so that failover tests do not wait long.
const clusterNodeTimeout = 1000 * time.Millisecond

var shared struct {
	sync.Mutex
	cluster *RedisCluster
	err     error
}

// SharedRedisCluster returns the Redis Cluster of the test binary, starting it on first use; it
// stops when the binary's tests end (Main stops it). Tests on it use a key prefix of their own
// (MustRedisCluster) and must leave its topology alone: a test that kills or fails over nodes
// starts a cluster of its own with NewRedisCluster.
func SharedRedisCluster(tb testing.TB) *RedisCluster {
	tb.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.cluster == nil && shared.err == nil {
		shared.cluster, shared.err = startRedisCluster()
	}
	if shared.err != nil {
		tb.Fatalf("testenv: Redis Cluster: %v", shared.err)
	}
	return shared.cluster
}

// stopSharedRedisCluster stops the binary's shared cluster, if one was started.
func stopSharedRedisCluster() {
	shared.Lock()
	defer shared.Unlock()
	if shared.cluster != nil {
		shared.cluster.Stop()
		shared.cluster = nil
	}
}

// NewRedisCluster starts a Redis Cluster of the test's own, stopped when the test ends.
func NewRedisCluster(tb testing.TB) *RedisCluster {
	tb.Helper()
	c, err := startRedisCluster()
	if err != nil {
		tb.Fatalf("testenv: Redis Cluster: %v", err)
	}
	tb.Cleanup(c.Stop)
	return c
}

func startRedisCluster() (c *RedisCluster, err error) {
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s not found: %s", bin, howToInstallRedis)
		}
	}
	dir, err := os.MkdirTemp("", "cgtest-redis-cluster-")
	if err != nil {
		return nil, err
	}
	c = &RedisCluster{dir: dir}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	for i := range 6 {
		n, err := c.startNode(filepath.Join(dir, strconv.Itoa(i)))
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, n)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.nodes {
		args = append(args, n.Addr())
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return nil, err
	}
	if err := c.waitReplicas(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// waitReplicas waits until every node sees a master and a replica in each shard, and
// every replica's link to its master is up, so that a test may fail a master over from the start.
func (c *RedisCluster) waitReplicas(ctx context.Context) error {
	return c.pollNodes(ctx, "redis cluster replicas not ready", func(n *ClusterNode) string {
		client := nodeClient(n.Addr())
		defer client.Close()
		shards, err := client.ClusterShards(ctx).Result()
		if err != nil {
			return fmt.Sprintf("%s: %v", n.Addr(), err)
		}
		for _, sh := range shards {
			// A replica's health stays "loading" for seconds after its link is up; the link
			// (below) is what a failover needs.
			if len(sh.Slots) > 0 && len(sh.Nodes) < 2 {
				return n.Addr() + " sees a shard without a replica"
			}
		}
		repl, err := client.Info(ctx, "replication").Result()
		if err != nil {
			return fmt.Sprintf("%s: %v", n.Addr(), err)
		}
		if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
			return n.Addr() + ": replica link not up"
		}
		return ""
	})
}

// startNode starts one cluster-enabled redis-server in dir and waits until it accepts
// connections.
func (c *RedisCluster) startNode(dir string) (*ClusterNode, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	n := &ClusterNode{Port: port, dir: dir, done: make(chan struct{})}
	n.cmd = exec.Command("redis-server",
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no",
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.Itoa(int(clusterNodeTimeout.Milliseconds())),
		// A lost replica link is not a reason to refuse promotion in a test of a few seconds.
		"--cluster-replica-validity-factor", "0",
		// Replicas sync at once rather than after the default 5 s wait for more of them.
		"--repl-diskless-sync-delay", "0")
	setParentDeathSignal(n.cmd)
	out, err := n.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	n.cmd.Stderr = n.cmd.Stdout
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	ready := make(chan struct{})
	var log strings.Builder // written only before ready closes
	go func() {
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			if !signalled {
				log.WriteString(sc.Text() + "\n")
				if strings.Contains(sc.Text(), "Ready to accept connections") {
					signalled = true
					close(ready)
				}
			}
		}
		if !signalled {
			close(ready)
		}
		_ = n.cmd.Wait()
		close(n.done)
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		n.Kill() // the reader then ends, and closes ready
		<-ready
	}
	if !n.Alive() || !strings.Contains(log.String(), "Ready to accept connections") {
		n.Kill()
		return nil, fmt.Errorf("redis-server on port %d did not start:\n%s", port, log.String())
	}
	return n, nil
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago. Redis Cluster also
// listens on port+10000 (its bus), so that one must be free too.
func freePort() (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port pair for a Redis Cluster node")
}

// Addrs returns the addresses of the nodes, masters and replicas.
func (c *RedisCluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// URL returns a redis:// URL of the cluster naming every node, as REDIS_URL takes it with
// REDIS_CLUSTER=true.
func (c *RedisCluster) URL() string {
	addrs := c.Addrs()
	u := "redis://" + addrs[0]
	for i, a := range addrs[1:] {
		if i == 0 {
			u += "?addr=" + a
		} else {
			u += "&addr=" + a
		}
	}
	return u
}

// Nodes returns the cluster's nodes.
func (c *RedisCluster) Nodes() []*ClusterNode { return c.nodes }

// Node returns the node listening on addr ("127.0.0.1:port"), or nil.
func (c *RedisCluster) Node(addr string) *ClusterNode {
	for _, n := range c.nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// Info returns the CLUSTER INFO field name (cluster_state, cluster_slots_ok, …) as one live
// node sees it.
func (c *RedisCluster) Info(ctx context.Context, addr, name string) (string, error) {
	client := nodeClient(addr)
	defer client.Close()
	info, err := client.ClusterInfo(ctx).Result()
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("CLUSTER INFO of %s has no %s", addr, name)
}

// WaitHealthy waits until every live node says cluster_state:ok with all 16384 slots ok and
// sees every other live node, or ctx ends.
func (c *RedisCluster) WaitHealthy(ctx context.Context) error {
	return c.pollNodes(ctx, "redis cluster not healthy", func(n *ClusterNode) string {
		state, err := c.Info(ctx, n.Addr(), "cluster_state")
		slots, _ := c.Info(ctx, n.Addr(), "cluster_slots_ok")
		if err != nil || state != "ok" || slots != "16384" {
			return fmt.Sprintf("%s: cluster_state=%s cluster_slots_ok=%s err=%v", n.Addr(), state, slots, err)
		}
		return ""
	})
}

// pollNodes checks every live node until none says what is wrong (check returns ""), or ctx
// ends; the error then starts with what and says the last thing wrong.
func (c *RedisCluster) pollNodes(ctx context.Context, what string, check func(*ClusterNode) string) error {
	for {
		wrong := ""
		for _, n := range c.nodes {
			if n.Alive() {
				if wrong = check(n); wrong != "" {
					break
				}
			}
		}
		if wrong == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %s", what, wrong)
		case <-time.After(50 * time.Millisecond): // polling the cluster's state
		}
	}
}

// Stop kills every node and removes the cluster's files.
func (c *RedisCluster) Stop() {
	for _, n := range c.nodes {
		n.Kill()
	}
	_ = os.RemoveAll(c.dir)
}

// ClusterClient returns a cluster client of c with the short timeouts the server uses; it is
// closed when the test ends.
func (c *RedisCluster) ClusterClient(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	opts, err := redis.ParseClusterURL(c.URL())
	if err != nil {
		tb.Fatalf("testenv: cluster URL: %v", err)
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = time.Second, time.Second, time.Second
	opts.PoolTimeout = time.Second
	client := redis.NewClusterClient(opts)
	tb.Cleanup(func() { client.Close() })
	return client
}

// MustRedisCluster returns a client of the binary's shared Redis Cluster and a key prefix of the
// test's own; every key under the prefix is deleted and the client closed when the test ends.
func MustRedisCluster(tb testing.TB) (*redis.ClusterClient, string) {
	tb.Helper()
	client := SharedRedisCluster(tb).ClusterClient(tb)
	prefix := "cgtest:" + RandomHex(6) + ":"
	tb.Cleanup(func() {
		ctx := context.Background()
		err := client.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			iter := node.Scan(ctx, 0, prefix+"*", 500).Iterator()
			for iter.Next(ctx) {
				// One key a command: the keys of one node may lie in different slots.
				if err := node.Del(ctx, iter.Val()).Err(); err != nil {
					return err
				}
			}
			return iter.Err()
		})
		if err != nil {
			tb.Errorf("testenv: delete the test's keys from the Redis Cluster: %v", err)
		}
	})
	return client, prefix
}

// nodeClient returns a client of one node that does not retry.
func nodeClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
}

// live returns a live node.
func (c *RedisCluster) live() (*ClusterNode, error) {
	for _, n := range c.nodes {
		if n.Alive() {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no node of the cluster is running")
}

// Owners returns the master that serves key's slot and its replica, as a live node sees them.
func (c *RedisCluster) Owners(ctx context.Context, key string) (master, replica *ClusterNode, err error) {
	n, err := c.live()
	if err != nil {
		return nil, nil, err
	}
	client := nodeClient(n.Addr())
	defer client.Close()
	slot, err := client.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return nil, nil, err
	}
	shards, err := client.ClusterShards(ctx).Result()
	if err != nil {
		return nil, nil, err
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if r.Start > slot || slot > r.End {
				continue
			}
			for _, node := range sh.Nodes {
				addr := net.JoinHostPort(node.IP, strconv.FormatInt(node.Port, 10))
				switch {
				case node.Health == "fail":
				case node.Role == "master":
					master = c.Node(addr)
				case replica == nil:
					replica = c.Node(addr)
				}
			}
			if master == nil {
				return nil, nil, fmt.Errorf("slot %d has no master of the cluster online", slot)
			}
			return master, replica, nil
		}
	}
	return nil, nil, fmt.Errorf("slot %d of %q is not served", slot, key)
}

// Role returns the node's role as it says: "master" or "slave".
func (n *ClusterNode) Role(ctx context.Context) (string, error) {
	client := nodeClient(n.Addr())
	defer client.Close()
	role, err := client.Do(ctx, "ROLE").Slice()
	if err != nil {
		return "", err
	}
	if len(role) == 0 {
		return "", fmt.Errorf("ROLE of %s: empty reply", n.Addr())
	}
	s, _ := role[0].(string)
	return s, nil
}

// UncoverSlot makes every live node forget who serves key's slot, so that the cluster no
// longer serves every slot: with the default cluster-require-full-coverage, it then says
// cluster_state:fail and refuses commands.
func (c *RedisCluster) UncoverSlot(ctx context.Context, key string) error {
	n, err := c.live()
	if err != nil {
		return err
	}
	client := nodeClient(n.Addr())
	slot, err := client.ClusterKeySlot(ctx, key).Result()
	client.Close()
	if err != nil {
		return err
	}
	for _, n := range c.nodes {
		if !n.Alive() {
			continue
		}
		client := nodeClient(n.Addr())
		err := client.ClusterDelSlots(ctx, int(slot)).Err()
		client.Close()
		// A node that already has it unassigned says so; that is the state wanted.
		if err != nil && !strings.Contains(err.Error(), "already unassigned") {
			return fmt.Errorf("CLUSTER DELSLOTS %d on %s: %w", slot, n.Addr(), err)
		}
	}
	return nil
}
