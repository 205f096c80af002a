package upload

// Default limits, used for every zero (or negative) field of [Limits].
const (
	DefaultMaxBytes     int64 = 100 << 20 // 100 MiB
	DefaultMaxRows            = 1_000_000
	DefaultMaxCellBytes       = 1024
	DefaultMaxLineBytes       = 65536
)

// Limits bounds an upload. A zero (or negative) field means its default:
// MaxBytes 100 MiB (the whole request body), MaxRows 1,000,000 data rows,
// MaxCellBytes 1024 bytes per cell or JSON row value, MaxLineBytes 65536 bytes
// per CSV line.
type Limits struct {
	MaxBytes     int64
	MaxRows      int
	MaxCellBytes int
	MaxLineBytes int
}

// withDefaults returns l with every unset field replaced by its default.
func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxRows <= 0 {
		l.MaxRows = DefaultMaxRows
	}
	if l.MaxCellBytes <= 0 {
		l.MaxCellBytes = DefaultMaxCellBytes
	}
	if l.MaxLineBytes <= 0 {
		l.MaxLineBytes = DefaultMaxLineBytes
	}
	return l
}

// jsonTokenBytes is the longest JSON token accepted: long enough for any cell
// within MaxCellBytes even when every character is a \u escape.
func (l Limits) jsonTokenBytes() int {
	return max(l.MaxLineBytes, 6*l.MaxCellBytes+2)
}
