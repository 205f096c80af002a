package live

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/gorilla/websocket"
)

// Update is the state of one import at one version, as delivered by the
// message bus or loaded from the database.
type Update struct {
	// ImportID identifies the import.
	ImportID string
	// Seq is the import's state version. The pipeline assigns it; it increases
	// with every state change and is stable across processes and restarts.
	Seq int64
	// Completed reports whether this is the import's terminal state. By the
	// pipeline's contract it is the import's last (highest) version.
	Completed bool
	// Import is the import summary JSON object, sent to clients verbatim.
	// The hub keeps a reference to it, so callers must not modify it after
	// passing it to Publish or returning it from a Snapshot.
	Import json.RawMessage
}

// Snapshot loads the current state of an import (from the database) for a
// connecting client. It is called after the client has been registered for
// updates, so nothing published while it runs is lost. ctx is cancelled when
// the client goes away or the hub shuts down.
type Snapshot func(ctx context.Context) (Update, error)

// Message types of the wire protocol.
const (
	typeSnapshot  = "snapshot"
	typeProgress  = "progress"
	typeCompleted = "completed"
)

// wireMessage is the JSON shape of every server → client message.
type wireMessage struct {
	Type   string          `json:"type"`
	Seq    int64           `json:"seq"`
	Import json.RawMessage `json:"import"`
}

// encode renders u as a wire message of the given type. If u.Import is not
// valid JSON, the message is still produced with "import":null and an error
// is returned alongside it, so that a broken summary never suppresses a
// completion.
func encode(typ string, u Update) ([]byte, error) {
	data, err := json.Marshal(wireMessage{Type: typ, Seq: u.Seq, Import: u.Import})
	if err == nil {
		return data, nil
	}
	err = fmt.Errorf("live: encode %s of import %q seq %d: %w", typ, u.ImportID, u.Seq, err)
	data, err2 := json.Marshal(wireMessage{Type: typ, Seq: u.Seq})
	if err2 != nil {
		return nil, fmt.Errorf("%w (fallback: %w)", err, err2)
	}
	return data, err
}

// prepare encodes u once for fan-out to many connections.
func prepare(typ string, u Update) (*websocket.PreparedMessage, error) {
	data, encErr := encode(typ, u)
	if data == nil {
		return nil, encErr
	}
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, data)
	if err != nil {
		return nil, fmt.Errorf("live: prepare %s of import %q: %w", typ, u.ImportID, err)
	}
	return pm, encErr
}

// newer returns whichever of a and b is the more recent state: a completed
// state wins over an incomplete one (completion is terminal), otherwise the
// higher seq wins; ties favour a.
func newer(a, b Update) Update {
	if a.Completed != b.Completed {
		if a.Completed {
			return a
		}
		return b
	}
	if b.Seq > a.Seq {
		return b
	}
	return a
}
