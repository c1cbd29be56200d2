// Package faults is vlproxy's fault suite against the real engine: the vlproxy binary in front
// of real OpenSearch nodes (testenv), with a node killed (kill -9) under load, vlproxy itself
// stopped with SIGTERM under load, the model server killed mid-call, slow clients, and upstreams
// that hang or answer garbage. Every server listens on loopback only, every load loop is bounded
// in count and time, and every test logs its figures (requests sent, failed, writes acknowledged
// versus found) with t.Logf.
//
// It also holds the differential test of the `_source`/`filter_path` emulation (the reranker
// relaxes both upstream and re-applies them): the same searches over generated documents, run
// directly on the node and through vlproxy, must give semantically equal JSON.
package faults
