package l2

import "time"

// Config sets how vlproxy uses Redis. Zero fields take the value from DefaultConfig.
type Config struct {
	// URL is redis://[user:password@]host:port/db (rediss:// for TLS). Several comma-separated
	// host:port after redis:// make a Redis Cluster client. "" turns fleet mode off.
	URL string `yaml:"url"`
	// Timeout bounds one Redis operation; past it the operation is a miss (or a lost lock),
	// never a failed request. Default 50ms.
	Timeout time.Duration `yaml:"timeout"`
	// DownAfter consecutive failed operations mark Redis down: the caches go L1-only and
	// invalidation per-instance, without waiting for timeouts, until a probe succeeds. Default 3.
	DownAfter int `yaml:"down_after"`
	// ProbeEvery is how often a down Redis is pinged to rejoin. Default 1s.
	ProbeEvery time.Duration `yaml:"probe_every"`
	// MaxValueBytes refuses (and counts) larger values. Default 512 KiB.
	MaxValueBytes int `yaml:"max_value_bytes"`
	// MaxTTL caps the lifetime of a value in Redis. Default 24h.
	MaxTTL time.Duration `yaml:"max_ttl"`
	// LockTTL is the lifetime of a fleet-wide fill lock (SET NX PX): the longest one leader can
	// hold a key before another replica may compute it too. Default 15s.
	LockTTL time.Duration `yaml:"lock_ttl"`
	// LockWait is how long a replica that lost the lock waits for the leader's value before it
	// computes the value itself. Default 10s.
	LockWait time.Duration `yaml:"lock_wait"`
	// Prefix starts every key, so several deployments can share one Redis. Default "vlproxy".
	Prefix string `yaml:"prefix"`
}

// DefaultConfig returns the defaults documented on each Config field.
func DefaultConfig() Config {
	return Config{
		Timeout:       50 * time.Millisecond,
		DownAfter:     3,
		ProbeEvery:    time.Second,
		MaxValueBytes: 512 << 10,
		MaxTTL:        24 * time.Hour,
		LockTTL:       15 * time.Second,
		LockWait:      10 * time.Second,
		Prefix:        "vlproxy",
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	if c.DownAfter <= 0 {
		c.DownAfter = d.DownAfter
	}
	if c.ProbeEvery <= 0 {
		c.ProbeEvery = d.ProbeEvery
	}
	if c.MaxValueBytes <= 0 {
		c.MaxValueBytes = d.MaxValueBytes
	}
	if c.MaxTTL <= 0 {
		c.MaxTTL = d.MaxTTL
	}
	if c.LockTTL <= 0 {
		c.LockTTL = d.LockTTL
	}
	if c.LockWait <= 0 {
		c.LockWait = d.LockWait
	}
	if c.Prefix == "" {
		c.Prefix = d.Prefix
	}
	return c
}
