package live

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// readUntilSeq reads conn until a message with seq or higher arrives.
func readUntilSeq(t *testing.T, conn *websocket.Conn, seq int64) []msg {
	t.Helper()
	var out []msg
	for {
		m := mustRead(t, conn)
		out = append(out, m)
		if m.Seq >= seq {
			return out
		}
	}
}

func TestResume(t *testing.T) {
	e := newEnv(t, Config{CoalesceInterval: 5 * time.Millisecond})
	p := e.pipeline(t, "imp1")

	a := e.dial(t, "imp1", 0)
	colA := collect(t, a)
	b := e.dial(t, "imp1", 0)
	first := mustRead(t, b)
	require.Equal(t, typeSnapshot, first.Type)

	// Phase 1: both watch.
	var u Update
	for i := int64(1); i <= 10; i++ {
		u = p.progress(i)
		time.Sleep(time.Millisecond)
	}
	seenB := append([]msg{first}, readUntilSeq(t, b, u.Seq)...)
	requireValidStream(t, seenB, nil, false)
	lastSeen := seenB[len(seenB)-1].Seq

	// Phase 2: B goes away, the import moves on.
	require.NoError(t, b.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseGoingAway, "tab hidden"), time.Now().Add(time.Second)))
	_ = b.Close()
	waitFor(t, "B unregistered", func() bool { return e.hub.Clients() == 1 })
	for i := int64(11); i <= 20; i++ {
		u = p.progress(i)
		time.Sleep(time.Millisecond)
	}

	// Phase 3: B resumes; the first message is a snapshot of the newest state.
	b2 := e.dial(t, "imp1", lastSeen)
	snap := mustRead(t, b2)
	require.Equal(t, typeSnapshot, snap.Type)
	require.Equal(t, u.Seq, snap.Seq, "resume delivers what was missed: the newest state")
	require.Greater(t, snap.Seq, lastSeen)
	colB := collect(t, b2)
	for i := int64(21); i <= 25; i++ {
		p.progress(i)
		time.Sleep(time.Millisecond)
	}
	final := p.complete(25)

	msgsA, errA := colA.wait(t)
	requireValidStream(t, msgsA, errA, true)
	msgsB, errB := colB.wait(t)
	msgsB = append([]msg{snap}, msgsB...)
	requireValidStream(t, msgsB, errB, true)
	for _, msgs := range [][]msg{msgsA, msgsB} {
		end := msgs[len(msgs)-1]
		require.Equal(t, final.Seq, end.Seq)
		require.JSONEq(t, string(final.Import), string(end.Import))
	}

	// After completion: snapshot + exactly one completed, whatever since says.
	waitFor(t, "all clients gone", func() bool { return e.hub.Clients() == 0 })
	for _, since := range []int64{0, lastSeen, final.Seq, final.Seq + 100} {
		c := e.dial(t, "imp1", since)
		msgs, err := readUntilClosed(t, c)
		requireValidStream(t, msgs, err, true)
		require.Len(t, msgs, 2, "since=%d", since)
		require.Equal(t, typeSnapshot, msgs[0].Type)
		require.Equal(t, typeCompleted, msgs[1].Type)
		require.Equal(t, final.Seq, msgs[0].Seq, "both carry the completion version")
		require.Equal(t, final.Seq, msgs[1].Seq)
		require.JSONEq(t, string(final.Import), string(msgs[1].Import))
	}
}

// Progress the client already has (seq ≤ since) is not sent again, even if
// the snapshot is older than since (e.g. read from a lagging replica).
func TestResumeSkipsProgressUpToSince(t *testing.T) {
	e := newEnv(t, Config{CoalesceInterval: 5 * time.Millisecond})
	p := e.pipeline(t, "imp1")
	for i := int64(1); i <= 4; i++ {
		p.update(i, false) // seq 5 stored
	}
	conn := e.dial(t, "imp1", 8)
	snap := mustRead(t, conn)
	require.Equal(t, typeSnapshot, snap.Type)
	require.Equal(t, int64(5), snap.Seq)
	for i := int64(5); i <= 7; i++ { // seqs 6, 7, 8: the client has them
		p.progress(i)
		time.Sleep(10 * time.Millisecond)
	}
	u := p.progress(8) // seq 9
	m := mustRead(t, conn)
	require.Equal(t, typeProgress, m.Type)
	require.Equal(t, u.Seq, m.Seq)
	final := p.complete(8)
	msgs, err := readUntilClosed(t, conn)
	requireValidStream(t, append([]msg{snap, m}, msgs...), err, true)
	require.Equal(t, final.Seq, msgs[0].Seq)
}
