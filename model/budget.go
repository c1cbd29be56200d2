package model

import (
	"context"
	"sync/atomic"
)

// KindCallLimit: the request that made the call has used up its model calls (WithCallBudget).
const KindCallLimit = "call_limit"

type budgetKey struct{}

// callBudget is the model calls left to one client request, shared by every call it makes
// (and by single-flight fills it starts: they keep its context's values).
type callBudget struct{ left atomic.Int64 }

// WithCallBudget returns a context whose model calls, through every Client, number at most n.
// A call beyond them fails with KindCallLimit without reaching the server.
func WithCallBudget(ctx context.Context, n int) context.Context {
	b := &callBudget{}
	b.left.Store(int64(n))
	return context.WithValue(ctx, budgetKey{}, b)
}

// takeCall charges one call to ctx's budget; false when none is left.
func takeCall(ctx context.Context) bool {
	b, _ := ctx.Value(budgetKey{}).(*callBudget)
	return b == nil || b.left.Add(-1) >= 0
}
