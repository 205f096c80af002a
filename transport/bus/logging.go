package bus

import (
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// logMessages logs every handled message with its correlation id, so one
// grep for an import's correlation id follows it through every stage. It
// logs at debug on success and at warn when the attempt failed (the router
// logs the error itself once retries are exhausted).
func logMessages(logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			start := time.Now()
			out, err := h(msg)
			attrs := []any{
				slog.String("handler", message.HandlerNameFromCtx(msg.Context())),
				slog.String("topic", message.SubscribeTopicFromCtx(msg.Context())),
				slog.String("message_uuid", msg.UUID),
				slog.String("correlation_id", middleware.MessageCorrelationID(msg)),
				slog.Duration("took", time.Since(start)),
			}
			if err != nil {
				logger.Warn("message handling failed", append(attrs, slog.Any("err", err))...)
			} else {
				logger.Debug("message handled", attrs...)
			}
			return out, err
		}
	}
}
