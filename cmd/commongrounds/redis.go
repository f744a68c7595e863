package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/broker"
	"github.com/commongrounds/commongrounds/config"
	"github.com/commongrounds/commongrounds/hub"
)

// redisPrefix starts every Redis key and channel of the server.
const redisPrefix = "cg:"

// openRedis returns a client of the configured Redis (a cluster client with REDIS_CLUSTER), or
// nil when REDIS_URL is unset. Timeouts are short, so that a Redis outage degrades the server
// (fan-out through Postgres) instead of stalling it.
func openRedis(cfg *config.Config) (redis.UniversalClient, error) {
	if cfg.RedisURL == "" {
		return nil, nil
	}
	if cfg.RedisCluster {
		opts, err := redis.ParseClusterURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = time.Second, time.Second, time.Second
		opts.PoolTimeout = time.Second
		return redis.NewClusterClient(opts), nil
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = time.Second, time.Second, time.Second
	opts.PoolTimeout = time.Second
	opts.MaxRetries = 1
	return redis.NewClient(opts), nil
}

// roomBroker returns the broker of the rooms and, with Redis, the presence store and the
// cluster-wide socket counter; close stops the broker.
func roomBroker(client redis.UniversalClient, cfg *config.Config, logger *slog.Logger, reg prometheus.Registerer) (b cg.Broker, presence hub.PresenceStore, sockets hub.SocketCounter, closeFn func() error) {
	if client == nil {
		return broker.NewMemory(), nil, nil, func() error { return nil }
	}
	rb := broker.NewRedis(client, broker.RedisOptions{Prefix: redisPrefix, Sharded: cfg.RedisCluster, Logger: logger})
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "commongrounds_redis_up", Help: "1 while the Redis subscriptions are connected.",
	}, func() float64 {
		if rb.Up() {
			return 1
		}
		return 0
	}))
	return rb, broker.NewRedisPresence(client, redisPrefix, instanceID(), 10*time.Second),
		broker.NewRedisSockets(client, redisPrefix, 30*time.Second), rb.Close
}

// instanceID names this process among the instances: host name and a random suffix.
func instanceID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}

// redisReady reports whether Redis answers (and, a cluster, serves every slot).
func redisReady(client redis.UniversalClient) func(context.Context) error {
	if client == nil {
		return nil
	}
	return broker.RedisReady(client)
}

// logMode says how this instance runs: alone (fan-out in process), or with Redis or Redis
// Cluster at the configured address (its password left out).
func logMode(logger *slog.Logger, cfg *config.Config) {
	switch {
	case cfg.RedisURL == "":
		logger.Info("mode: one instance, rooms fan out in process (REDIS_URL is not set; Redis is only needed for several instances)")
	case cfg.RedisCluster:
		addrs := "?"
		if opts, err := redis.ParseClusterURL(cfg.RedisURL); err == nil {
			addrs = strings.Join(opts.Addrs, ",")
		}
		logger.Info("mode: Redis Cluster at " + addrs + ", for fan-out between instances, presence and rate limits")
	default:
		addr := "?"
		if opts, err := redis.ParseURL(cfg.RedisURL); err == nil {
			addr = fmt.Sprintf("%s db %d", opts.Addr, opts.DB)
		}
		logger.Info("mode: Redis at " + addr + ", for fan-out between instances, presence and rate limits")
	}
}
