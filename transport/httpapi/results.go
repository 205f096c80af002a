package httpapi

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/phonepipe/phonepipe/projections"
)

func (s *Server) getResults(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	im, err := s.cfg.Imports.Get(ctx, TenantFrom(ctx), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	format := r.URL.Query().Get("format")
	var enc rowEncoder
	switch format {
	case "", "ndjson":
		enc = &ndjsonEncoder{}
		w.Header().Set("Content-Type", "application/x-ndjson")
	case "json":
		enc = &jsonArrayEncoder{}
		w.Header().Set("Content-Type", "application/json")
	case "csv":
		enc = &csvEncoder{}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+im.ID+`.csv"`)
	default:
		s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_format", "format must be ndjson, json or csv"))
		return
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := enc.begin(bw); err != nil {
		return
	}
	err = s.cfg.Results.Each(ctx, im.ID, func(row projections.ResultRow) error {
		return enc.row(bw, row)
	})
	if err != nil {
		// Headers are gone; the truncated body is all we can signal with.
		s.logger.ErrorContext(ctx, "streaming results failed", "import", im.ID, "err", err)
		return
	}
	if err := enc.end(bw); err != nil {
		return
	}
	_ = bw.Flush()
}

// rowEncoder writes result rows in one output format.
type rowEncoder interface {
	begin(w *bufio.Writer) error
	row(w *bufio.Writer, row projections.ResultRow) error
	end(w *bufio.Writer) error
}

type ndjsonEncoder struct{}

func (ndjsonEncoder) begin(*bufio.Writer) error { return nil }
func (ndjsonEncoder) end(*bufio.Writer) error   { return nil }
func (ndjsonEncoder) row(w *bufio.Writer, row projections.ResultRow) error {
	return json.NewEncoder(w).Encode(row)
}

type jsonArrayEncoder struct{ n int }

func (e *jsonArrayEncoder) begin(w *bufio.Writer) error { return w.WriteByte('[') }
func (e *jsonArrayEncoder) end(w *bufio.Writer) error {
	_, err := w.WriteString("]\n")
	return err
}
func (e *jsonArrayEncoder) row(w *bufio.Writer, row projections.ResultRow) error {
	if e.n > 0 {
		if err := w.WriteByte(','); err != nil {
			return err
		}
	}
	e.n++
	b, err := json.Marshal(row)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// csvColumns are the CSV export's columns, in order.
var csvColumns = []string{"row", "input", "ref", "region", "valid", "reason", "e164", "international",
	"national", "extension", "country_code", "region_code", "type", "carrier", "location", "timezones", "duplicate_of"}

type csvEncoder struct{ cw *csv.Writer }

func (e *csvEncoder) begin(w *bufio.Writer) error {
	e.cw = csv.NewWriter(w)
	return e.cw.Write(csvColumns)
}

func (e *csvEncoder) end(*bufio.Writer) error {
	e.cw.Flush()
	return e.cw.Error()
}

func (e *csvEncoder) row(_ *bufio.Writer, row projections.ResultRow) error {
	itoa := func(n int) string {
		if n == 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	rec := []string{strconv.Itoa(row.Row), row.Input, row.Ref, row.Region, strconv.FormatBool(row.Valid), row.Reason,
		row.E164, row.International, row.National, row.Extension, itoa(row.CountryCode), row.RegionCode, row.Type,
		row.Carrier, row.Location, strings.Join(row.Timezones, " "), itoa(row.DuplicateOf)}
	for i := range rec {
		rec[i] = SpreadsheetSafe(rec[i])
	}
	return e.cw.Write(rec)
}

// SpreadsheetSafe neutralises a CSV cell that a spreadsheet would run as a
// formula (starting with = + - @, tab or CR) by prefixing a single quote. A
// plain E.164 value ("+" and digits only) cannot carry a formula and is kept
// as it is, so programs reading the export get numbers back unchanged.
func SpreadsheetSafe(cell string) string {
	if cell == "" {
		return cell
	}
	switch cell[0] {
	case '=', '+', '-', '@', '\t', '\r':
		if isPlainE164(cell) {
			return cell
		}
		return "'" + cell
	}
	return cell
}

// isPlainE164 reports "+" followed by 1 to 15 digits.
func isPlainE164(s string) bool {
	if len(s) < 2 || len(s) > 16 || s[0] != '+' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
