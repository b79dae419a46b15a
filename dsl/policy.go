package dsl

// wrapPolicies wraps v in the policies named by n.Common.
func wrapPolicies(d *decoder, n *Node, v any) any {
	for key, val := range n.Common {
		d.errorf(val, "%s: not supported on %s %q yet", key, n.Role, n.Kind)
	}
	return nil
}
