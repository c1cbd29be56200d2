// Package model is vlproxy's client for model servers: chat completions with
// images (vLLM, SGLang, llama.cpp llama-server, Ollama /v1, any OpenAI-style
// server), rerank (vLLM/Jina /v1/rerank, Cohere /v2/rerank, TEI /rerank, vLLM
// /score) and embeddings (/v1/embeddings). It owns what every call needs:
// request encoding per server flavour, error decoding by HTTP status first,
// a per-endpoint concurrency limit with a bounded wait queue, deadlines from
// the caller's context with cancellation that closes the connection (so vLLM
// aborts the generation), a circuit breaker, background health probes and
// metrics. Wire formats follow ../shared/reference/model-servers.md.
//
// types.go and errors.go are the contract consumers (rewrite/, rerank/,
// proxy/) code against; model/modeltest simulates the servers for tests.
package model
