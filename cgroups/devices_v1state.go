package cgroups

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// The v1 devices controller keeps a default behaviour (allow or deny every
// device) and a list of exceptions to it. Writing rules one by one from a
// spec that starts with "deny all" would deny every device to the running
// container until the allow rules that follow are written, so an update
// instead computes the state the rules lead to, reads the current state
// from devices.list, and writes only the difference.
//
// The kernel's rules (security/device_cgroup.c): "a" written to
// devices.allow or devices.deny sets the default and clears the
// exceptions. Any other rule that goes against the default adds an
// exception (OR-ing access into an exact type:major:minor match); a rule
// that goes with the default takes its access bits away from the exactly
// matching exception, dropping it when no bit is left. devices.list shows
// "a *:* rwm" for a default-allow cgroup (its exceptions are not shown)
// and the exceptions of a default-deny one.

// deviceKey is the exact-match identity of an exception.
type deviceKey struct {
	typ          byte
	major, minor int64
}

// v1DeviceState is the devices controller's state of one cgroup.
type v1DeviceState struct {
	defaultAllow bool
	// exceptions maps each exception to its access bits (a subset of "rwm").
	exceptions map[deviceKey]string
	// order lists the keys in the order they were added, as the kernel
	// keeps (and devices.list shows) them; it may name removed keys.
	order []deviceKey
}

// keys returns the exceptions in the order they were added.
func (st v1DeviceState) keys() []deviceKey {
	seen := make(map[deviceKey]bool, len(st.exceptions))
	var out []deviceKey
	for _, k := range st.order {
		if _, ok := st.exceptions[k]; ok && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	// Keys set without order (tests build states by hand) come last.
	for _, k := range sortedKeys(st.exceptions) {
		if !seen[k] {
			out = append(out, k)
		}
	}
	return out
}

// emulateDeviceRules returns the state a cgroup whose parent allows
// everything reaches after the rules are written in order.
func emulateDeviceRules(rules []deviceRule) v1DeviceState {
	return v1DeviceState{defaultAllow: true}.apply(rules)
}

// apply returns the state after the rules are written to a cgroup in
// state st, as the kernel does it.
func (st v1DeviceState) apply(rules []deviceRule) v1DeviceState {
	ex := make(map[deviceKey]string, len(st.exceptions))
	for k, v := range st.exceptions {
		ex[k] = v
	}
	st.exceptions = ex
	st.order = append([]deviceKey(nil), st.order...)
	for _, r := range rules {
		if r.typ == 'a' {
			st = v1DeviceState{defaultAllow: r.allow, exceptions: map[deviceKey]string{}}
			continue
		}
		k := deviceKey{r.typ, r.major, r.minor}
		if r.allow != st.defaultAllow {
			if _, ok := st.exceptions[k]; !ok {
				st.order = append(st.order, k)
			}
			st.exceptions[k] = unionAccess(st.exceptions[k], r.access)
			continue
		}
		if cur, ok := st.exceptions[k]; ok {
			if left := subtractAccess(cur, r.access); left != "" {
				st.exceptions[k] = left
			} else {
				delete(st.exceptions, k)
			}
		}
	}
	return st
}

// parseDevicesList reads the contents of devices.list. A default-allow
// cgroup shows only "a *:* rwm"; its exceptions, if any, are unknown, and
// known reports false then.
func parseDevicesList(s string) (st v1DeviceState, known bool, err error) {
	st.exceptions = map[deviceKey]string{}
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return st, false, fmt.Errorf("devices.list line %q", line)
		}
		if f[0] == "a" {
			return v1DeviceState{defaultAllow: true, exceptions: map[deviceKey]string{}}, false, nil
		}
		majMin := strings.SplitN(f[1], ":", 2)
		if len(f[0]) != 1 || (f[0] != "b" && f[0] != "c") || len(majMin) != 2 {
			return st, false, fmt.Errorf("devices.list line %q", line)
		}
		num := func(s string) (int64, error) {
			if s == "*" {
				return anyDevice, nil
			}
			return strconv.ParseInt(s, 10, 64)
		}
		maj, err1 := num(majMin[0])
		min, err2 := num(majMin[1])
		access, err3 := normalizeAccess(f[2])
		if err1 != nil || err2 != nil || err3 != nil {
			return st, false, fmt.Errorf("devices.list line %q", line)
		}
		k := deviceKey{f[0][0], maj, min}
		if _, ok := st.exceptions[k]; !ok {
			st.order = append(st.order, k)
		}
		st.exceptions[k] = unionAccess(st.exceptions[k], access)
	}
	return st, true, nil
}

// transition returns the rules to write, in order, to take a cgroup from
// cur to want. When the default stays "deny" and the current exceptions
// are known, no device that both states allow is ever denied on the way.
func (want v1DeviceState) transition(cur v1DeviceState, curKnown bool) []deviceRule {
	var out []deviceRule
	if want.defaultAllow != cur.defaultAllow || !curKnown {
		// Reset, then list every exception.
		cur = v1DeviceState{defaultAllow: want.defaultAllow, exceptions: map[deviceKey]string{}}
		out = append(out, deviceRule{allow: want.defaultAllow, typ: 'a', major: anyDevice, minor: anyDevice, access: "rwm"})
	}
	// An exception goes against the default: with a deny default it is an
	// allow rule, and the rule that takes access away is a deny.
	add, remove := !want.defaultAllow, want.defaultAllow
	// Grant first, then take away: what both states allow stays allowed.
	// New exceptions are written in the rules' order, which the kernel
	// keeps in devices.list.
	for _, k := range want.keys() {
		if extra := subtractAccess(want.exceptions[k], cur.exceptions[k]); extra != "" {
			out = append(out, deviceRule{allow: add, typ: k.typ, major: k.major, minor: k.minor, access: extra})
		}
	}
	for _, k := range cur.keys() {
		if gone := subtractAccess(cur.exceptions[k], want.exceptions[k]); gone != "" {
			out = append(out, deviceRule{allow: remove, typ: k.typ, major: k.major, minor: k.minor, access: gone})
		}
	}
	return out
}

func sortedKeys(m map[deviceKey]string) []deviceKey {
	keys := make([]deviceKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.typ != b.typ {
			return a.typ < b.typ
		}
		if a.major != b.major {
			return a.major < b.major
		}
		return a.minor < b.minor
	})
	return keys
}

// unionAccess and subtractAccess combine access strings, keeping "rwm" order.
func unionAccess(a, b string) string {
	var s strings.Builder
	for _, c := range "rwm" {
		if strings.ContainsRune(a, c) || strings.ContainsRune(b, c) {
			s.WriteRune(c)
		}
	}
	return s.String()
}

func subtractAccess(a, b string) string {
	var s strings.Builder
	for _, c := range "rwm" {
		if strings.ContainsRune(a, c) && !strings.ContainsRune(b, c) {
			s.WriteRune(c)
		}
	}
	return s.String()
}
