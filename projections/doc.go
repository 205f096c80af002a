// Package projections holds phonepipe's read models and the aggregator's
// state, all in SQL: the imports (with their counters), the per-row results,
// the per-number projection with the imports each number appeared in, and the
// per-number event streams as served by the API. Writers run inside the
// consuming handler's unit of work (see transport/storage), so each message's
// effects happen once; readers use the read pool.
package projections
