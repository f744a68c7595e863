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
	return c, nil
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
		"--cluster-replica-validity-factor", "0")
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
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
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
	var last string
	for {
		ok := true
		for _, n := range c.nodes {
			if !n.Alive() {
				continue
			}
			state, err := c.Info(ctx, n.Addr(), "cluster_state")
			slots, _ := c.Info(ctx, n.Addr(), "cluster_slots_ok")
			if err != nil || state != "ok" || slots != "16384" {
				ok = false
				last = fmt.Sprintf("%s: cluster_state=%s cluster_slots_ok=%s err=%v", n.Addr(), state, slots, err)
				break
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redis cluster not healthy: %s", last)
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
