package resultcache

// Config sets how result-cache keys are built and how writes invalidate them.
type Config struct {
	// IdentityHeaders are request headers, besides Authorization, X-Api-Key,
	// es-security-runas-user, opendistro_security_impersonate_as, X-Proxy-User, X-Proxy-Roles
	// and Cookie, that identify the caller (for example a header set by an authenticating
	// gateway): requests differing in any of them never share an entry. A request carrying a
	// header whose name looks like credentials (auth, token, key, session, cookie, user, role,
	// ...) that is in neither list bypasses the cache. Default: none.
	IdentityHeaders []string `yaml:"identity_headers"`
	// AssumeConcrete treats every plain index name that the topology does not know as a
	// concrete index (not an alias). Set it only when the cluster has no aliases or data
	// streams, or when every alias change passes through vlproxy and SetTopology is fed;
	// otherwise an unknown name depends on every write. Default false.
	AssumeConcrete bool `yaml:"assume_concrete"`
}

// DefaultConfig returns the defaults documented on each Config field.
func DefaultConfig() Config {
	return Config{}
}
