package live

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestProgressIsCoalesced(t *testing.T) {
	const interval = 20 * time.Millisecond
	e := newEnv(t, Config{CoalesceInterval: interval})
	p := e.pipeline(t, "imp1")
	conn := e.dial(t, "imp1", 0)
	require.Equal(t, typeSnapshot, mustRead(t, conn).Type)
	col := collect(t, conn)

	const updates = 10_000
	start := time.Now()
	var latest Update
	for i := int64(1); i <= updates; i++ {
		latest = p.progress(i)
	}
	publishTook := time.Since(start)
	waitFor(t, "latest progress delivered", func() bool {
		m, ok := col.last()
		return ok && m.Seq == latest.Seq
	})
	elapsed := time.Since(start)
	final := p.complete(updates)

	msgs, err := col.wait(t)
	requireValidStream(t, append([]msg{{Type: typeSnapshot}}, msgs...), err, true)
	progress := msgs[:len(msgs)-1]
	// At most one flush per interval, each sending at most one message per
	// import; +1 for the ticker phase, +1 for a tick pending before start,
	// +1 slack.
	bound := int(elapsed/interval) + 3
	t.Logf("published %d updates in %v; received %d progress messages in %v (bound %d)",
		updates, publishTook, len(progress), elapsed, bound)
	require.LessOrEqual(t, len(progress), bound)
	require.Less(t, len(progress), updates/10, "coalescing must cut the message count drastically")

	last := progress[len(progress)-1]
	require.Equal(t, latest.Seq, last.Seq, "the last state before completion is the latest")
	require.JSONEq(t, string(latest.Import), string(last.Import))
	require.Equal(t, final.Seq, msgs[len(msgs)-1].Seq)
	require.JSONEq(t, string(final.Import), string(msgs[len(msgs)-1].Import))
}
