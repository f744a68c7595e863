package broker

import "time"

// SetPresenceClock makes p read the time from now.
func SetPresenceClock(p *RedisPresence, now func() time.Time) { p.now = now }

// SetSocketsClock makes s read the time from now.
func SetSocketsClock(s *RedisSockets, now func() time.Time) { s.now = now }
