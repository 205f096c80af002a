package httpapi

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"github.com/phonepipe/phonepipe/domain"
)

// APIKey maps one secret key to its tenant.
type APIKey struct {
	Tenant string
	Key    string
}

// ParseAPIKeys parses "tenant:key,tenant:key".
func ParseAPIKeys(s string) ([]APIKey, error) {
	var out []APIKey
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		tenant, key, ok := strings.Cut(part, ":")
		if !ok || tenant == "" || key == "" {
			return nil, fmt.Errorf("api key %q: want tenant:key", part)
		}
		out = append(out, APIKey{Tenant: tenant, Key: key})
	}
	return out, nil
}

type tenantKey struct{}

// TenantFrom returns the authenticated tenant of a request context.
func TenantFrom(ctx context.Context) string {
	t, _ := ctx.Value(tenantKey{}).(string)
	return t
}

// authenticate resolves the tenant of a request: with no keys configured
// everyone is the default tenant; otherwise a Bearer key (or ?token= on
// WebSocket upgrades) must match, compared in constant time.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.cfg.APIKeys) == 0 {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tenantKey{}, domain.DefaultTenant)))
			return
		}
		presented, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			presented, ok = r.URL.Query().Get("token"), true
		}
		tenant := ""
		if ok && presented != "" {
			for _, k := range s.cfg.APIKeys {
				if subtle.ConstantTimeCompare([]byte(presented), []byte(k.Key)) == 1 {
					tenant = k.Tenant
				}
			}
		}
		if tenant == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="phonepipe"`)
			s.writeError(w, r, errorf(http.StatusUnauthorized, "unauthorized", "missing or wrong API key"))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tenantKey{}, tenant)))
	})
}
