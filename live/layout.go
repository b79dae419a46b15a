package live

import (
	"fmt"
	"html"
	"strings"

	"github.com/pipe-dsl/pipe/pipeline"
)

// The live page's graph is SVG drawn here, server-side, with a layered
// layout: a node's column is the longest path to it from a source, a
// column's nodes stack in file order, and the dead-letter sink sits under
// the last column, its failure edges dashed and red. Pipelines are small DAGs, so this reads as well as dot's
// layout for them, and the page needs no JavaScript library at all (no
// Mermaid or Graphviz-wasm, hundreds of KB each): it only updates the
// texts of the drawn nodes.
const (
	nodeW, nodeH = 210, 112
	colGap       = 50
	rowGap       = 44
	margin       = 16
)

type placed struct {
	x, y int
}

// layout returns each node's position by name, and the drawing's size.
func layout(g Graph) (map[string]placed, int, int) {
	col := map[string]int{}
	for _, n := range g.Nodes {
		col[n.Name] = 0
	}
	// Longest path over the flow edges; len(nodes) rounds suffice for a DAG.
	for range g.Nodes {
		for _, e := range g.Edges {
			if !e.Failed && col[e.To] < col[e.From]+1 {
				col[e.To] = col[e.From] + 1
			}
		}
	}
	last := 0
	for _, c := range col {
		last = max(last, c)
	}
	rows := map[int]int{}
	pos := map[string]placed{}
	for _, n := range g.Nodes {
		c := col[n.Name]
		if n.DeadLetter {
			c = last
		}
		pos[n.Name] = placed{x: margin + c*(nodeW+colGap), y: margin + rows[c]*(nodeH+rowGap)}
		rows[c]++
	}
	w, h := 0, 0
	for _, p := range pos {
		w, h = max(w, p.x+nodeW+margin), max(h, p.y+nodeH+margin)
	}
	return pos, w, h
}

// svg draws g: a group per node (id "node-NAME", with the text elements
// the page fills in: rate, counts, queue, extra) and a path per edge.
func svg(g Graph) string {
	pos, w, h := layout(g)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" id="graph" width="%d" height="%d" viewBox="0 0 %d %d">`, w, h, w, h)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#667"/></marker>` +
		`<marker id="arrow-failed" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#c33"/></marker></defs>`)
	for _, e := range g.Edges {
		a, ok1 := pos[e.From]
		z, ok2 := pos[e.To]
		if !ok1 || !ok2 {
			continue
		}
		x1, y1 := a.x+nodeW, a.y+nodeH/2
		x2, y2 := z.x, z.y+nodeH/2
		mid := (x1 + x2) / 2
		if e.Failed {
			// Down from the bottom of the failing node to the top of the
			// dead-letter sink below.
			x1, y1, x2, y2 = a.x+nodeW/2, a.y+nodeH, z.x+nodeW/2, z.y
			fmt.Fprintf(&b, `<path class="edge failed" d="M%d,%d C%d,%d %d,%d %d,%d" marker-end="url(#arrow-failed)"/>`, x1, y1, x1, y1+rowGap, x2, y2-rowGap, x2, y2)
			continue
		}
		fmt.Fprintf(&b, `<path class="edge" d="M%d,%d C%d,%d %d,%d %d,%d" marker-end="url(#arrow)"/>`, x1, y1, mid, y1, mid, y2, x2, y2)
		if e.Port != "" {
			fmt.Fprintf(&b, `<text class="port" x="%d" y="%d">%s</text>`, mid-10, (y1+y2)/2-4, html.EscapeString(e.Port))
		}
	}
	for _, n := range g.Nodes {
		p := pos[n.Name]
		role := n.Role.String()
		if n.DeadLetter {
			role = pipeline.RoleDeadLetter.String()
		}
		name := html.EscapeString(n.Name)
		fmt.Fprintf(&b, `<g class="node %s" id="node-%s" data-node="%s" transform="translate(%d,%d)">`, role, name, name, p.x, p.y)
		fmt.Fprintf(&b, `<rect class="box" width="%d" height="%d" rx="8"/>`, nodeW, nodeH)
		fmt.Fprintf(&b, `<text class="title" x="10" y="20">%s <tspan class="kind">%s</tspan></text>`, name, html.EscapeString(n.Kind))
		b.WriteString(`<text class="rate" x="10" y="40">…</text>`)
		b.WriteString(`<text class="counts" x="10" y="58"></text>`)
		b.WriteString(`<text class="errs" x="10" y="76"></text>`)
		b.WriteString(`<text class="extra" x="10" y="94"></text>`)
		if role != pipeline.RoleSource.String() {
			fmt.Fprintf(&b, `<rect class="qbg" x="10" y="101" width="%d" height="5"/><rect class="qfill" x="10" y="101" width="0" height="5" data-max="%d"/>`, nodeW-20, nodeW-20)
		}
		b.WriteString(`</g>`)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// graphJSON is the page's (and /api/v1/graph's) view of g.
func graphJSON(g Graph) any {
	type node struct {
		Name       string   `json:"name"`
		Kind       string   `json:"kind"`
		Role       string   `json:"role"`
		DeadLetter bool     `json:"dead_letter,omitempty"`
		Settings   []string `json:"settings"`
	}
	type edge struct {
		From   string `json:"from"`
		To     string `json:"to"`
		Port   string `json:"port,omitempty"`
		Failed bool   `json:"failed,omitempty"`
	}
	out := struct {
		Name  string `json:"name"`
		Nodes []node `json:"nodes"`
		Edges []edge `json:"edges"`
	}{Name: g.Name, Nodes: []node{}, Edges: []edge{}}
	for _, n := range g.Nodes {
		out.Nodes = append(out.Nodes, node{n.Name, n.Kind, n.Role.String(), n.DeadLetter, append([]string{}, n.Settings...)})
	}
	for _, e := range g.Edges {
		out.Edges = append(out.Edges, edge{e.From, e.To, e.Port, e.Failed})
	}
	return out
}
