package httpserver

import "bytes"

// SplitNDJSON returns the messages of a newline-delimited body: each line
// without its trailing "\r", skipping lines that hold only white space.
// The returned slices alias body but cannot be appended into each other.
func SplitNDJSON(body []byte) [][]byte {
	out, _ := splitNumbered(body)
	return out
}

// splitNumbered is [SplitNDJSON] that also returns the 1-based line number
// of each message in the body, for answers that name lines.
func splitNumbered(body []byte) (out [][]byte, nums []int) {
	for n := 1; len(body) > 0; n++ {
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
		nums = append(nums, n)
	}
	return out, nums
}
