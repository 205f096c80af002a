package storage

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// IsUnavailable reports whether err says the database could not be reached
// or the connection to it broke (refused, reset, closed, cut mid-answer,
// the server shutting down), as opposed to an error of the statement
// itself. Work that failed this way did not happen and can simply be done
// again once the database is back: it must never be given up on (poisoned)
// because of the outage.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) {
		return true
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		// Class 08: connection exception; 57P01..57P03: the server is
		// shutting down, crashed or not accepting connections yet.
		return len(pg.Code) == 5 && pg.Code[:2] == "08" ||
			pg.Code == "57P01" || pg.Code == "57P02" || pg.Code == "57P03"
	}
	var op *net.OpError
	return errors.As(err, &op)
}
