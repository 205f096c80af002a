package bus

import "strings"

// PoisonTopic receives messages that failed every retry.
const PoisonTopic = "poison"

// Topic is the topic of a message name: the name with dots replaced, so it
// is a valid table name on every SQL backend ("job.validate.v1" →
// "job_validate_v1").
func Topic(name string) string {
	return strings.ReplaceAll(name, ".", "_")
}
