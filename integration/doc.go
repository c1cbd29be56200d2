// Package integration holds vlproxy's end-to-end tests against a real OpenSearch node: the
// same client sequences run directly and through an in-process proxy must give the same
// statuses, headers and bodies (transparency and fidelity), and the result cache must never
// serve what a write through the proxy made stale.
//
// The tests use testenv: one node per package run, or $VLPROXY_TEST_ES_URL. They skip when
// the OpenSearch launcher is not built (bash testenv/build.sh).
package integration
