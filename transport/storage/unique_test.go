package storage_test

import (
	"context"
	"errors"
	"testing"

	"github.com/phonepipe/phonepipe/transport/storage"
)

func TestIsUniqueViolationOnSQLite(t *testing.T) {
	db, err := storage.OpenSQLite(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.Write.ExecContext(ctx, `CREATE TABLE u (k TEXT PRIMARY KEY, v TEXT UNIQUE)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Write.ExecContext(ctx, `INSERT INTO u VALUES ('a', 'x')`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`INSERT INTO u VALUES ('a', 'y')`, `INSERT INTO u VALUES ('b', 'x')`} {
		_, err := db.Write.ExecContext(ctx, q)
		if !storage.IsUniqueViolation(err) {
			t.Errorf("%s: %v is not recognised as a unique violation", q, err)
		}
	}
	_, err = db.Write.ExecContext(ctx, `INSERT INTO missing VALUES (1)`)
	if err == nil || storage.IsUniqueViolation(err) || storage.IsUniqueViolation(errors.New("UNIQUE constraint failed")) {
		t.Errorf("other errors are taken for unique violations: %v", err)
	}
}
