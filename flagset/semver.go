package flagset

import "strings"

// semver is a parsed semantic version (build metadata dropped: it never affects
// precedence). The numeric parts are kept as their digits (no leading zeros), so
// parts of any size compare numerically, as in flagd (golang.org/x/mod/semver).
// pre is the dot-separated prerelease ("" when none).
type semver struct {
	major, minor, patch string
	pre                 string
}

// parseSemver accepts semantic versions 2.0.0 with an optional leading "v"/"V",
// and like flagd partial versions: "1" and "1.2" mean 1.0.0 and 1.2.0, also with
// a prerelease or build ("1.2-beta" is 1.2.0-beta). It does not allocate.
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
	nums := [3]string{"0", "0", "0"}
	n := 0
	for {
		part, rest, more := strings.Cut(core, ".")
		if n == 3 || !numericIdent(part) {
			return v, false
		}
		nums[n] = part
		n++
		if !more {
			break
		}
		core = rest
	}
	v.major, v.minor, v.patch = nums[0], nums[1], nums[2]
	return v, true
}

// semverArg is a sem_ver argument as version text: a string, or like flagd a
// number in its JSON form (1.5 → "1.5").
func semverArg(x any) (string, bool) {
	switch t := x.(type) {
	case string:
		return t, true
	case float64:
		return FormatNumber(t), true
	}
	return "", false
}

// numericIdent tells whether p is a number without leading zeros.
func numericIdent(p string) bool {
	if p == "" || (len(p) > 1 && p[0] == '0') {
		return false
	}
	return isDigits(p)
}

// compareDigits orders two numeric identifiers (no leading zeros) by value.
func compareDigits(x, y string) int {
	if len(x) != len(y) {
		if len(x) < len(y) {
			return -1
		}
		return 1
	}
	return strings.Compare(x, y)
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
	for _, d := range [3][2]string{{a.major, b.major}, {a.minor, b.minor}, {a.patch, b.patch}} {
		if c := compareDigits(d[0], d[1]); c != 0 {
			return c
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
		return compareDigits(x, y)
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
