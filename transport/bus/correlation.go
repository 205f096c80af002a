package bus

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

type correlationKey struct{}

// WithCorrelationID returns ctx carrying the correlation id that messages
// published from it get (set by the HTTP layer from the request).
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationIDFrom returns the correlation id of ctx: the one set by
// WithCorrelationID, else the one of the message being handled.
func CorrelationIDFrom(ctx context.Context) string {
	if id, ok := ctx.Value(correlationKey{}).(string); ok && id != "" {
		return id
	}
	if orig := cqrs.OriginalMessageFromCtx(ctx); orig != nil {
		return middleware.MessageCorrelationID(orig)
	}
	return ""
}

// stampCorrelation copies the correlation id of ctx onto an outgoing message.
func stampCorrelation(ctx context.Context, msg *message.Message) {
	if id := CorrelationIDFrom(ctx); id != "" && middleware.MessageCorrelationID(msg) == "" {
		middleware.SetCorrelationID(id, msg)
	}
}
