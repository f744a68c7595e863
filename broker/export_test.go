package broker

import "time"

// SetPresenceClock makes p read the time from now.
func SetPresenceClock(p *RedisPresence, now func() time.Time) { p.now = now }
