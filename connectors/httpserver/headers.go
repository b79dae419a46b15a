package httpserver

import (
	"fmt"
	"net/http"
	"strings"
)

// hiddenHeaders can never be copied into message metadata: credentials,
// and transport headers that describe the request rather than a message.
var hiddenHeaders = map[string]bool{
	"Authorization": true, "Proxy-Authorization": true, "Cookie": true,
	"Content-Length": true, "Connection": true, "Keep-Alive": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// metaKeys maps the canonical form of each name in meta_headers to its
// metadata key, the lower-case name; it refuses hidden headers.
func metaKeys(names []string) (map[string]string, error) {
	keys := make(map[string]string, len(names))
	for _, n := range names {
		c := http.CanonicalHeaderKey(strings.TrimSpace(n))
		if c == "" {
			return nil, fmt.Errorf("meta_headers: empty header name")
		}
		if hiddenHeaders[c] {
			return nil, fmt.Errorf("meta_headers: %s is never copied into metadata", c)
		}
		keys[c] = strings.ToLower(c)
	}
	return keys, nil
}

// headerMeta returns the metadata of a request, shared read-only by all
// its messages: the meta_headers it carries (repeated values joined by
// ", "), http_path and http_remote_addr. Its size is bounded by the
// allow-list and by the server's 64 KiB header limit, whatever the client
// sends.
func (s *source) headerMeta(r *http.Request) map[string]string {
	meta := make(map[string]string, len(s.meta)+2)
	for canon, key := range s.meta {
		if v := r.Header[canon]; len(v) > 0 {
			meta[key] = strings.Join(v, ", ")
		}
	}
	meta["http_path"] = r.URL.Path
	meta["http_remote_addr"] = r.RemoteAddr
	return meta
}
