package flagset

// flagd's sem_ver operator: comparing semantic versions (parsing in semver.go).

import ()

func opSemVer(s *state, args []node) any {
	a, ok1 := semverArg(argAt(s, args, 0))
	op, ok2 := argAt(s, args, 1).(string)
	b, ok3 := semverArg(argAt(s, args, 2))
	if !ok1 || !ok2 || !ok3 {
		return nil
	}
	va, ok1 := parseSemver(a)
	vb, ok2 := parseSemver(b)
	if !ok1 || !ok2 {
		return nil
	}
	return semverOp(va, op, vb)
}

// semverOp applies a sem_ver operator; an unknown operator gives null.
func semverOp(va semver, op string, vb semver) any {
	switch op {
	case "=":
		return compareSemver(va, vb) == 0
	case "!=":
		return compareSemver(va, vb) != 0
	case "<":
		return compareSemver(va, vb) < 0
	case "<=":
		return compareSemver(va, vb) <= 0
	case ">":
		return compareSemver(va, vb) > 0
	case ">=":
		return compareSemver(va, vb) >= 0
	case "^":
		return va.major == vb.major
	case "~":
		return va.major == vb.major && va.minor == vb.minor
	}
	return nil
}

// semverConstNode is sem_ver with a constant operator and right-hand version
// (the usual form: {"sem_ver": [{"var": "appVersion"}, ">=", "2.4.0"]}),
// parsed once at compile time.
type semverConstNode struct {
	a  node
	op string
	b  semver
}

// constSemver returns the pre-parsed form, or nil when op or b are computed
// or invalid (then the general operator handles them).
func constSemver(args []node) node {
	op, ok1 := args[1].(constNode)
	b, ok2 := args[2].(constNode)
	if !ok1 || !ok2 {
		return nil
	}
	ops, ok1 := op.v.(string)
	bs, ok2 := semverArg(b.v)
	if !ok1 || !ok2 {
		return nil
	}
	vb, ok := parseSemver(bs)
	if !ok {
		return nil
	}
	return &semverConstNode{a: args[0], op: ops, b: vb}
}

func (n *semverConstNode) eval(s *state) any {
	a, ok := semverArg(n.a.eval(s))
	if !ok {
		return nil
	}
	va, ok := parseSemver(a)
	if !ok {
		return nil
	}
	return semverOp(va, n.op, n.b)
}
