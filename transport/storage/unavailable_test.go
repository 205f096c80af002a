package storage_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/phonepipe/phonepipe/transport/storage"
)

func TestIsUnavailable(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("begin unit of work: %w", err) }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"bad connection", wrap(driver.ErrBadConn), true},
		{"connection done", wrap(sql.ErrConnDone), true},
		{"mysql invalid connection", wrap(mysql.ErrInvalidConn), true},
		{"cut mid-answer", wrap(io.ErrUnexpectedEOF), true},
		{"postgres admin shutdown", wrap(&pgconn.PgError{Code: "57P01"}), true},
		{"postgres connection failure", wrap(&pgconn.PgError{Code: "08006"}), true},
		{"postgres unique violation", wrap(&pgconn.PgError{Code: "23505"}), false},
		{"postgres serialization failure", wrap(&pgconn.PgError{Code: "40001"}), false},
		{"mysql duplicate entry", wrap(&mysql.MySQLError{Number: 1062}), false},
		{"plain error", errors.New("project job 3: bad data"), false},
		{"deadline", wrap(context.DeadlineExceeded), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := storage.IsUnavailable(tt.err); got != tt.want {
				t.Errorf("IsUnavailable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestIsUnavailableRealRefusal dials a port nobody listens on, through the
// PostgreSQL driver, and checks that the error it really returns counts.
func TestIsUnavailableRealRefusal(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // now refused
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = pgconn.Connect(ctx, "postgres://postgres@"+addr+"/test?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	if !storage.IsUnavailable(fmt.Errorf("begin unit of work: %w", err)) {
		t.Fatalf("refused connection not recognised: %v (%T)", err, err)
	}
}
