package live

import (
	"net/http"
	"net/url"
	"strings"
)

// originPolicy decides which WebSocket handshakes may proceed, protecting
// against cross-site WebSocket hijacking (a foreign page opening the socket
// with the victim's cookies).
type originPolicy struct {
	any     bool
	allowed map[string]struct{}
}

func newOriginPolicy(origins []string) originPolicy {
	p := originPolicy{allowed: make(map[string]struct{}, len(origins))}
	for _, o := range origins {
		if o == "*" {
			p.any = true
			continue
		}
		p.allowed[normalizeOrigin(o)] = struct{}{}
	}
	return p
}

// allow reports whether the handshake request r may be upgraded. Requests
// without an Origin header come from non-browser clients and are allowed;
// so are same-origin requests (Origin host equals the request Host, compared
// case-insensitively), "*" and exactly listed origins.
func (p originPolicy) allow(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || p.any {
		return true
	}
	if _, ok := p.allowed[normalizeOrigin(origin)]; ok {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// normalizeOrigin lower-cases an origin and strips a trailing slash, so that
// configuration typos such as "https://App.example.com/" still match.
func normalizeOrigin(o string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o)), "/")
}
