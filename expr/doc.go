// Package expr compiles and evaluates pipe's CEL expressions over JSON messages.
//
// Every expression is compiled in one CEL environment that declares five
// variables:
//
//	msg   dyn                  the message body decoded from JSON
//	meta  map(string, string)  the message metadata
//	raw   bytes                the message body as received
//	seq   int                  the sequence number (meaningful in the generate source)
//	env   map(string, string)  environment variables, read as env.NAME (WithEnv)
//
// The environment holds the CEL standard library, the optional types
// (msg.?field), and the strings, math, encoders, lists, sets and bindings
// (cel.bind) extensions.
//
// # Numbers
//
// JSON has one number type and CEL has three, and CEL does no implicit
// conversion between them, so this package fixes the following rules.
//
// Decoding (DecodeJSON and msg):
//   - A number written as an integer literal, with neither a fraction nor an
//     exponent, is an int if it fits in int64, else a uint if it fits in
//     uint64, else a BigInt, which CEL reads as the nearest double and
//     EncodeJSON writes as its original text. So 3 and -7 are ints,
//     9007199254740993 and 18446744073709551615 keep every digit,
//     -9223372036854775809 passes through unchanged unless an expression
//     reads it, and 1e3, 15.0 and 15.5 are doubles.
//   - Every other number is a double. A number out of the double range (1e400)
//     is a decoding error.
//
// Arithmetic: the operators + - * / accept an int or a uint on one side and a
// double on the other, convert the integer to double and return a double. So
// msg.amount * 100.0 works whether amount arrived as 15 or as 15.5, and
// msg.amount + 1 is an int for 15 and a double for 15.5. Comparisons (< <= > >=
// == !=) between int, uint and double compare numeric values: 15 == 15.0 is
// true. % stays integer-only.
//
// Encoding (EncodeJSON and EvalJSON) writes ints and uints with every digit,
// and doubles in the shortest form that reads back as the same double, the
// way encoding/json does: 15.0 is written 15, 1e21 is written 1e+21. A double
// result may therefore be decoded as an int by the next stage; the rules above
// make that invisible to arithmetic and comparisons. NaN and infinities are
// encoding errors. Other CEL values encode as follows: bytes as standard
// base64 strings, timestamps as RFC 3339 strings, durations as seconds strings
// such as "1.5s", null as null, maps as objects with keys (strings, or ints,
// uints and bools written as strings) sorted in byte order, lists as arrays.
//
// # Decoding only what is read
//
// Compile inspects the checked expression. If msg appears only as the operand
// of top-level field reads (msg.f, msg["f"], msg.?f, has(msg.f)), Eval scans
// the body once, skipping every other value without allocating, and decodes
// only those fields; the whole body is still validated as JSON. Otherwise, or
// if the body is not a JSON object, Eval decodes the whole body and stores the
// result in Input.Decoded so a later stage can reuse it. Both paths give the
// same results. A program that never reads msg never parses the body, so a
// body that is not JSON is then no error.
package expr
