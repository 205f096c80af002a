package live

import (
	"net/http"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

func TestOriginCheck(t *testing.T) {
	cases := []struct {
		name    string
		allowed []string
		origin  string // "self" = the server's own origin
		want    int
	}{
		{"no origin allowed", nil, "", http.StatusSwitchingProtocols},
		{"same origin allowed", nil, "self", http.StatusSwitchingProtocols},
		{"cross origin refused by default", nil, "https://evil.example", http.StatusForbidden},
		{"listed origin allowed", []string{"https://app.example.com"}, "https://app.example.com", http.StatusSwitchingProtocols},
		{"listed origin case-insensitive", []string{"https://App.example.com/"}, "https://app.example.COM", http.StatusSwitchingProtocols},
		{"unlisted origin refused", []string{"https://app.example.com"}, "https://evil.example", http.StatusForbidden},
		{"other scheme refused", []string{"https://app.example.com"}, "http://app.example.com", http.StatusForbidden},
		{"same origin allowed with a list", []string{"https://app.example.com"}, "self", http.StatusSwitchingProtocols},
		{"wildcard", []string{"*"}, "https://anything.example", http.StatusSwitchingProtocols},
		{"garbage origin refused", nil, "::not a url", http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Config{AllowedOrigins: tc.allowed})
			e.pipeline(t, "imp1")
			header := http.Header{}
			switch tc.origin {
			case "":
			case "self":
				header.Set("Origin", e.srv.URL)
			default:
				header.Set("Origin", tc.origin)
			}
			conn, resp, err := websocket.DefaultDialer.Dial(e.url("imp1", 0), header)
			require.NotNil(t, resp, "dial error: %v", err)
			_ = resp.Body.Close()
			require.Equal(t, tc.want, resp.StatusCode)
			if tc.want != http.StatusSwitchingProtocols {
				require.ErrorIs(t, err, websocket.ErrBadHandshake)
				require.Zero(t, e.hub.Clients())
				return
			}
			require.NoError(t, err)
			defer conn.Close()
			require.Equal(t, typeSnapshot, mustRead(t, conn).Type)
		})
	}
}

func TestOriginPolicyUnit(t *testing.T) {
	p := newOriginPolicy(nil)
	r, err := http.NewRequest(http.MethodGet, "http://api.example.com/v1/imports/x/progress", nil)
	require.NoError(t, err)
	r.Header.Set("Origin", "https://API.example.com")
	require.True(t, p.allow(r), "same host, any scheme, case-insensitive")
	r.Header.Set("Origin", "https://api.example.com.evil.example")
	require.False(t, p.allow(r))
	r.Header.Set("Origin", "null")
	require.False(t, p.allow(r), "opaque origins are cross-origin")
	require.True(t, newOriginPolicy([]string{"null"}).allow(r), "unless listed")
	require.Equal(t, "https://a.b", normalizeOrigin(" https://A.b/ "))
}
