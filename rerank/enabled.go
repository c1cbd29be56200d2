package rerank

// EnabledFor reports whether reranking is on by default for the index expression (Config.Indices),
// so the proxy can tell a plain search it may forward untouched from one it must rerank.
func (r *Reranker) EnabledFor(index string) bool { return r.enabledFor(index) }
