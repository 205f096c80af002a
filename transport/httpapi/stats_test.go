package httpapi_test

import (
	"reflect"
	"testing"

	"github.com/phonepipe/phonepipe/projections"
)

// TestOpenAPICarrierStatsMatchesGoType checks the CarrierStat schema
// against the type the handler encodes.
func TestOpenAPICarrierStatsMatchesGoType(t *testing.T) {
	doc := loadSpec(t)
	ref := doc.Components.Schemas["CarrierStat"]
	if ref == nil {
		t.Fatal("no schema CarrierStat")
	}
	checkSchema(t, "CarrierStat", ref.Value, reflect.TypeFor[projections.CarrierStat]())
}
