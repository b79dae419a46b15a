package live

import (
	_ "embed"
	"encoding/json"
	"html/template"
	"net/http"
)

//go:embed web/page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Parse(pageHTML))

// page serves the live page: the graph drawn as SVG, and a script that
// fills it in from /api/v1/stats/stream. Everything is in this one
// response; the page loads nothing else but the API.
func (s *Server) page(w http.ResponseWriter, _ *http.Request) {
	_, g := s.cur()
	data, _ := json.Marshal(graphJSON(g))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:")
	_ = pageTmpl.Execute(w, struct {
		Name      string
		SVG       template.HTML
		GraphJSON template.JS
	}{g.Name, template.HTML(svg(g)), template.JS(data)})
}
