package handlers

// Handler names. They name consumer groups: renaming one makes it consume
// its topic again from the first message, so never rename them.
const (
	SplitterName   = "split"
	ValidatorName  = "validate"
	ProjectorName  = "project"
	AggregatorName = "aggregate"
)
