package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// writeJSON renders v as JSON text with randomly chosen spellings of numbers and
// strings (escapes, exponent forms) that every reader must read alike.
func (g *gen) writeJSON(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case float64:
		b.WriteString(g.jsonNumber(x))
	case string:
		g.jsonString(b, x)
	case rawJSON:
		b.WriteString(x.text)
	case rawYAML:
		g.writeJSON(b, x.alt)
	case deep:
		for i := 0; i < x.n; i++ {
			if x.arrays {
				b.WriteString(`[`)
			} else {
				b.WriteString(`{"k":`)
			}
		}
		b.WriteString(`"leaf"`)
		for i := 0; i < x.n; i++ {
			b.WriteString(map[bool]string{true: "]", false: "}"}[x.arrays])
		}
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(oneOf(g, ",", ", "))
			}
			g.writeJSON(b, e)
		}
		b.WriteByte(']')
	case obj:
		b.WriteByte('{')
		for i, m := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			g.jsonString(b, m.key)
			b.WriteString(oneOf(g, ":", ": "))
			g.writeJSON(b, m.val)
		}
		b.WriteByte('}')
	default:
		panic(fmt.Sprintf("diffgen: cannot render %T", v))
	}
}

func (g *gen) jsonNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e21 && g.chance(0.7) {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if g.chance(0.1) {
			s += ".0"
		}
		return s
	}
	return strconv.FormatFloat(f, oneOf[byte](g, 'g', 'e', 'E'), -1, 64)
}

func (g *gen) jsonString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(b, `\u%04x`, r)
		case r > 0x7e && g.chance(0.3):
			if r > 0xffff {
				r1, r2 := utf16Pair(r)
				fmt.Fprintf(b, `\u%04x\u%04X`, r1, r2)
			} else {
				fmt.Fprintf(b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

func utf16Pair(r rune) (rune, rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}

// Plain YAML scalars at the edges of the YAML 1.2 core schema and of the YAML 1.1
// rules some loaders still apply: each must read the same in every reader.
var yamlEdgeScalars = []string{
	"=", "<<", "._5", "1e400", "-1e400", "0x1F", "0o17", "017", "0b11", "+1", ".5", "5.", "1_000", "1:20", "0.1e1",
	"yes", "No", "on", "OFF", "y", "~", "Null", "NULL", "null", "True", "FALSE", "tRUE", "2001-12-14",
	"2001-12-14T21:59:43.10-05:00", ".inf", "-.Inf", ".NaN", "1e5", "1E5", "+.5", "-0", "0x", "0xG",
	"12e", "9007199254740993", "123456789012345678901234567890", "0o8", "-0x1", "1.", ".", "-", "a b",
	"!!str 12", "!!int 12", "!!int \"12\"", "!!float 1", "!!bool true", "!!null ''", "!!binary aGVsbG8=",
	"!!timestamp 2001-12-14", "!custom x", "! 12", "!<tag:yaml.org,2002:str> 5", "!!int x", "!!float .inf",
	"'single'", "\"dq \\u00e9\"", "\"\\ud800\"", "\"\\ud83d\\ude00\"", "\"\\U0001F600\"", "\"\\x41\"",
	"&anc 5", "@at", "`tick", "%pct", "a # comment", "'it''s'", "\"\\N\\_\\L\\P\"",
}

// writeYAML renders v as YAML at the given indentation, choosing between block and
// flow collections and between plain, single- and double-quoted scalars.
func (g *gen) writeYAML(b *strings.Builder, v any, indent int, flow bool) {
	switch x := v.(type) {
	case nil:
		if flow {
			b.WriteString(oneOf(g, "null", "~", "Null"))
		} else {
			b.WriteString(oneOf(g, "null", "~", "Null", ""))
		}
	case bool:
		s := strconv.FormatBool(x)
		b.WriteString(oneOf(g, s, strings.ToUpper(s), strings.ToUpper(s[:1])+s[1:]))
	case float64:
		b.WriteString(g.yamlNumber(x))
	case string:
		g.yamlString(b, x, flow)
	case rawJSON:
		b.WriteString(x.alt)
	case rawYAML:
		b.WriteString(x.text)
	case deep:
		// deep nesting in flow style (block style would need the indentation)
		g.writeJSON(b, x)
	case []any:
		if flow || len(x) == 0 || g.chance(0.3) {
			b.WriteByte('[')
			for i, e := range x {
				if i > 0 {
					b.WriteString(", ")
				}
				g.writeYAML(b, e, indent, true)
			}
			b.WriteByte(']')
			return
		}
		for _, e := range x {
			b.WriteString("\n" + strings.Repeat(" ", indent) + "- ")
			g.writeYAML(b, e, indent+2, false)
		}
	case obj:
		if flow || len(x) == 0 || g.chance(0.25) {
			b.WriteByte('{')
			for i, m := range x {
				if i > 0 {
					b.WriteString(", ")
				}
				g.yamlKey(b, m.key, true)
				b.WriteString(": ")
				g.writeYAML(b, m.val, indent, true)
			}
			b.WriteByte('}')
			return
		}
		for _, m := range x {
			b.WriteString("\n" + strings.Repeat(" ", indent))
			g.yamlKey(b, m.key, false)
			b.WriteString(": ")
			g.yamlValue(b, m.val, indent+2)
		}
	default:
		panic(fmt.Sprintf("diffgen: cannot render %T", v))
	}
}

// yamlValue writes a block mapping's value, sometimes with an anchor (then in flow
// style, on the key's line) or as an alias of an earlier anchor instead.
func (g *gen) yamlValue(b *strings.Builder, v any, indent int) {
	switch {
	case len(g.anchors) > 0 && g.chance(0.03):
		b.WriteString("*" + oneOf(g, g.anchors...))
	case g.chance(0.04):
		name := fmt.Sprintf("a%d", len(g.anchors))
		g.anchors = append(g.anchors, name)
		b.WriteString("&" + name + " ")
		g.writeYAML(b, v, indent, true)
	default:
		g.writeYAML(b, v, indent, false)
	}
}

func (g *gen) yamlNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e18 {
		switch g.pick(6) {
		case 0:
			if f >= 0 {
				return "0x" + strconv.FormatInt(int64(f), 16)
			}
		case 1:
			if f >= 0 {
				return "0o" + strconv.FormatInt(int64(f), 8)
			}
		case 2:
			if f >= 0 {
				return "+" + strconv.FormatFloat(f, 'f', -1, 64)
			}
		}
	}
	return g.jsonNumber(f)
}

// plainSafe reports whether s may be written as a plain scalar that every YAML
// reader reads back as the same string.
func plainSafe(s string, flow bool) bool {
	if s == "" || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return false
	}
	if strings.ContainsAny(s, ":#'\"\\\n\t{}[],&*!|>%@`?-~") || strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x20 || r == 0x2028 || r == 0x2029 || r == 0x85 || r == 0xfeff || r >= 0xd800 && r < 0xe000
	}) {
		return false
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return false
	}
	switch strings.ToLower(s) {
	case "null", "true", "false", "=", "<<":
		return false
	}
	return s[0] != '.' && s[0] != '+'
}

func (g *gen) yamlString(b *strings.Builder, s string, flow bool) {
	switch {
	case g.chance(0.015):
		b.WriteString(yamlEdgeScalars[g.pick(len(yamlEdgeScalars))])
	case plainSafe(s, flow) && g.chance(0.6):
		b.WriteString(s)
	case !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x85 || r == 0x2028 || r == 0x2029 || r == 0xfeff }) && g.chance(0.4):
		b.WriteString("'" + strings.ReplaceAll(s, "'", "''") + "'")
	default:
		b.WriteByte('"')
		for _, r := range s {
			switch {
			case r == '"' || r == '\\':
				b.WriteByte('\\')
				b.WriteRune(r)
			case r < 0x20 || r == 0x85 || r == 0x2028 || r == 0x2029 || r == 0xfeff || r == 0x7f:
				fmt.Fprintf(b, `\u%04x`, r)
			case r > 0xffff && g.chance(0.3):
				fmt.Fprintf(b, `\U%08x`, r)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteByte('"')
	}
}

func (g *gen) yamlKey(b *strings.Builder, k string, flow bool) {
	if plainSafe(k, flow) && g.chance(0.7) {
		b.WriteString(k)
		return
	}
	if g.chance(0.004) {
		b.WriteString(oneOf(g, "<<", "=", "1", "true", "~", "._5", "on"))
		return
	}
	g.yamlString(b, k, flow)
}
