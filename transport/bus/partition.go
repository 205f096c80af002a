package bus

import (
	"reflect"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/phonepipe/phonepipe/domain"
)

// PartitionKeyMetadata is the metadata key carrying a message's partition
// key. Partitioned backends (Kafka) keep the messages of one key in one
// partition, in publishing order; the others ignore it.
const PartitionKeyMetadata = "partition_key"

// PartitionKey returns the partition key of a command or event:
//
//   - import-level events (accepted, projected jobs, progress, completion)
//     are keyed by import id, so one import's progress is counted and
//     reported in order;
//   - validation jobs and the per-number events they record are keyed by
//     import id and job, so the jobs of one import spread over every
//     partition and every validator and projector. A NumbersRecorded
//     message carries many number streams; the projector keeps each
//     number's order itself (it parks an event that arrives before its
//     predecessor), so per-number order does not depend on partitioning.
//
// Anything else has no key (the backend spreads it).
func PartitionKey(v any) string {
	rv := reflect.Indirect(reflect.ValueOf(v))
	if !rv.IsValid() {
		return ""
	}
	switch m := rv.Interface().(type) {
	case domain.ImportAccepted:
		return m.ImportID
	case domain.ValidateJob:
		return domain.JobKey(m.ImportID, m.Job)
	case domain.NumbersRecorded:
		return domain.JobKey(m.ImportID, m.Job)
	case domain.JobProjected:
		return m.ImportID
	case domain.ImportProgressed:
		return m.Import.ID
	case domain.ImportCompleted:
		return m.Import.ID
	}
	return ""
}

// stampPartitionKey records v's partition key on its message.
func stampPartitionKey(v any, msg *message.Message) {
	if k := PartitionKey(v); k != "" {
		msg.Metadata.Set(PartitionKeyMetadata, k)
	}
}
