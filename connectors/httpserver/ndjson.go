package httpserver

import "bytes"

// SplitNDJSON returns the messages of a newline-delimited body: each line
// without its trailing "\r", skipping lines that hold only white space.
// The returned slices alias body but cannot be appended into each other.
func SplitNDJSON(body []byte) [][]byte {
	var out [][]byte
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		out = append(out, line[:len(line):len(line)])
	}
	return out
}
