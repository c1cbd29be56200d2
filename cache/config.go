package cache

import "time"

// Config sets the size, lifetime and name of a Cache. Zero fields take the value from
// DefaultConfig, so a partly filled Config from a YAML file works as expected.
type Config struct {
	// Name labels the metrics (vlproxy_cache_hits_total{cache="<name>"}). Default "default".
	Name string `yaml:"name"`
	// MaxBytes bounds the memory held by entries (keys, values and a fixed per-entry
	// overhead); the least recently used entries are evicted to stay under it. Default 64 MiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxEntryBytes refuses (and counts) a key plus value larger than this. Default 1 MiB.
	MaxEntryBytes int64 `yaml:"max_entry_bytes"`
	// TTL is how long Set keeps an entry; negative means entries never expire and are
	// bounded only by MaxBytes. Default 1m.
	TTL time.Duration `yaml:"ttl"`
	// FillTimeout bounds a single-flight fill in Do. The fill runs detached from the
	// cancellation of the caller that started it, so waiters are not failed when that
	// caller goes away; this timeout is what stops it instead. Default 30s.
	FillTimeout time.Duration `yaml:"fill_timeout"`
}

// DefaultConfig returns the defaults documented on each Config field.
func DefaultConfig() Config {
	return Config{
		Name:          "default",
		MaxBytes:      64 << 20,
		MaxEntryBytes: 1 << 20,
		TTL:           time.Minute,
		FillTimeout:   30 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (cfg Config) withDefaults() Config {
	d := DefaultConfig()
	if cfg.Name == "" {
		cfg.Name = d.Name
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = d.MaxBytes
	}
	if cfg.MaxEntryBytes <= 0 {
		cfg.MaxEntryBytes = d.MaxEntryBytes
	}
	if cfg.TTL == 0 {
		cfg.TTL = d.TTL
	}
	if cfg.FillTimeout <= 0 {
		cfg.FillTimeout = d.FillTimeout
	}
	return cfg
}
