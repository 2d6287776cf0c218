package flagset

import (
	"strconv"
	"strings"
)

// semver is a parsed semantic version (build metadata dropped: it never affects
// precedence). pre is the dot-separated prerelease ("" when none).
type semver struct {
	major, minor, patch uint64
	pre                 string
}

// parseSemver accepts semantic versions 2.0.0 with an optional leading "v"/"V",
// and like flagd (golang.org/x/mod/semver) the shorthands "1" and "1.2"
// (= 1.0.0 and 1.2.0) when they carry no prerelease or build suffix.
// It does not allocate.
func parseSemver(s string) (semver, bool) {
	var v semver
	if s != "" && (s[0] == 'v' || s[0] == 'V') {
		s = s[1:]
	}
	core, build, hasBuild := strings.Cut(s, "+")
	if hasBuild && !validIdents(build, false) {
		return v, false
	}
	core, pre, hasPre := strings.Cut(core, "-")
	if hasPre {
		if !validIdents(pre, true) {
			return v, false
		}
		v.pre = pre
	}
	var nums [3]uint64
	n := 0
	for {
		part, rest, more := strings.Cut(core, ".")
		if n == 3 {
			return v, false
		}
		x, ok := numericIdent(part)
		if !ok {
			return v, false
		}
		nums[n] = x
		n++
		if !more {
			break
		}
		core = rest
	}
	if n < 3 && (hasPre || hasBuild) {
		return v, false
	}
	v.major, v.minor, v.patch = nums[0], nums[1], nums[2]
	return v, true
}

// numericIdent parses a number without leading zeros.
func numericIdent(p string) (uint64, bool) {
	if p == "" || (len(p) > 1 && p[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(p, 10, 64)
	return n, err == nil
}

// validIdents checks dot-separated identifiers of [0-9A-Za-z-]; prerelease
// numeric identifiers must not have leading zeros.
func validIdents(s string, prerelease bool) bool {
	for {
		id, rest, more := strings.Cut(s, ".")
		if id == "" {
			return false
		}
		digits := true
		for i := 0; i < len(id); i++ {
			c := id[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				digits = false
			default:
				return false
			}
		}
		if prerelease && digits && len(id) > 1 && id[0] == '0' {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

// compareSemver orders by semver 2.0.0 precedence.
func compareSemver(a, b semver) int {
	for _, d := range [3][2]uint64{{a.major, b.major}, {a.minor, b.minor}, {a.patch, b.patch}} {
		if d[0] != d[1] {
			if d[0] < d[1] {
				return -1
			}
			return 1
		}
	}
	switch {
	case a.pre == "" && b.pre == "":
		return 0
	case a.pre == "":
		return 1
	case b.pre == "":
		return -1
	}
	x, y := a.pre, b.pre
	for {
		xi, xr, xmore := strings.Cut(x, ".")
		yi, yr, ymore := strings.Cut(y, ".")
		if c := comparePreIdent(xi, yi); c != 0 {
			return c
		}
		switch {
		case !xmore && !ymore:
			return 0
		case !xmore:
			return -1 // fewer identifiers: lower precedence
		case !ymore:
			return 1
		}
		x, y = xr, yr
	}
}

// comparePreIdent compares prerelease identifiers: numeric ones numerically
// (they have no leading zeros, so length then text), numeric < alphanumeric,
// alphanumeric ones in ASCII order.
func comparePreIdent(x, y string) int {
	xNum, yNum := isDigits(x), isDigits(y)
	switch {
	case xNum && yNum:
		if len(x) != len(y) {
			if len(x) < len(y) {
				return -1
			}
			return 1
		}
		return strings.Compare(x, y)
	case xNum:
		return -1
	case yNum:
		return 1
	}
	return strings.Compare(x, y)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
