package daemon

import (
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// sameOrigin refuses what a browser can be made to send to an admin route from
// another site: a Host outside the allow-list (DNS rebinding sends the attacker's
// name), an Origin other than the daemon itself (a cross-site form or fetch), and
// any body that is not JSON (HTML forms can only send urlencoded, multipart and
// text/plain without a CORS preflight, which the daemon never grants).
func (p *authPolicy) sameOrigin(r *http.Request) decision {
	if !p.hostAllowed(r.Host) {
		return decision{http.StatusForbidden, "Host is not in http.allowedHosts"}
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if o == "null" || err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
			return decision{http.StatusForbidden, "cross-origin request refused (Origin is not this daemon)"}
		}
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return decision{http.StatusForbidden, "cross-site request refused"}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return decision{http.StatusUnsupportedMediaType, "admin routes take Content-Type: application/json"}
	}
	return decision{}
}

// hostAllowed tells whether a Host header names an allowed host.
func (p *authPolicy) hostAllowed(hostport string) bool {
	return slices.Contains(p.allowedHosts, "*") || slices.Contains(p.allowedHosts, hostOnly(hostport))
}

// hostOnly is the lower-case host of a Host header, without port or brackets.
func hostOnly(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.ToLower(strings.Trim(h, "[]"))
}
