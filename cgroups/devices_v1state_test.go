package cgroups

import (
	"math/rand"
	"reflect"
	"testing"
)

func rule(allow bool, typ byte, major, minor int64, access string) deviceRule {
	return deviceRule{allow: allow, typ: typ, major: major, minor: minor, access: access}
}

// sameState compares the default and the exceptions, not their order.
func sameState(a, b v1DeviceState) bool {
	if len(a.exceptions) == 0 && len(b.exceptions) == 0 {
		return a.defaultAllow == b.defaultAllow
	}
	return a.defaultAllow == b.defaultAllow && reflect.DeepEqual(a.exceptions, b.exceptions)
}

func TestEmulateDeviceRules(t *testing.T) {
	got := emulateDeviceRules([]deviceRule{
		rule(false, 'a', anyDevice, anyDevice, "rwm"),
		rule(true, 'c', 1, 3, "r"),
		rule(true, 'c', 1, 3, "w"),
		rule(true, 'c', 1, 5, "rwm"),
		rule(false, 'c', 1, 5, "m"),
		rule(true, 'b', anyDevice, anyDevice, "m"),
		rule(true, 'c', 5, 1, "rw"),
		rule(false, 'c', 5, 1, "rw"),
	})
	want := v1DeviceState{exceptions: map[deviceKey]string{
		{'c', 1, 3}:                 "rw",
		{'c', 1, 5}:                 "rw",
		{'b', anyDevice, anyDevice}: "m",
	}}
	if !sameState(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if st := emulateDeviceRules(nil); !st.defaultAllow || len(st.exceptions) != 0 {
		t.Fatalf("no rules: %+v, want allow all", st)
	}
	// "a" resets whatever came before.
	st := emulateDeviceRules([]deviceRule{rule(false, 'a', anyDevice, anyDevice, "rwm"), rule(true, 'c', 1, 3, "r"), rule(true, 'a', anyDevice, anyDevice, "rwm")})
	if !st.defaultAllow || len(st.exceptions) != 0 {
		t.Fatalf("allow all after exceptions: %+v", st)
	}
}

func TestParseDevicesList(t *testing.T) {
	st, known, err := parseDevicesList("c 1:3 rwm\nc 1:5 r\nb *:* m\nc 136:* rw\n")
	if err != nil || !known {
		t.Fatal(err, known)
	}
	want := map[deviceKey]string{{'c', 1, 3}: "rwm", {'c', 1, 5}: "r", {'b', anyDevice, anyDevice}: "m", {'c', 136, anyDevice}: "rw"}
	if st.defaultAllow || !reflect.DeepEqual(st.exceptions, want) {
		t.Fatalf("got %+v", st)
	}
	if st, known, err = parseDevicesList("a *:* rwm\n"); err != nil || known || !st.defaultAllow {
		t.Fatalf("allow all: %+v %v %v", st, known, err)
	}
	if st, known, err = parseDevicesList(""); err != nil || !known || st.defaultAllow {
		t.Fatalf("empty list (deny all): %+v %v %v", st, known, err)
	}
	for _, bad := range []string{"c 1:3", "x 1:3 r", "c 1-3 r", "c 1:3 q"} {
		if _, _, err := parseDevicesList(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestDeviceTransition(t *testing.T) {
	deny := func(ex map[deviceKey]string) v1DeviceState { return v1DeviceState{exceptions: ex} }
	tests := []struct {
		name  string
		cur   v1DeviceState
		known bool
		want  v1DeviceState
		rules []deviceRule
	}{
		{
			name:  "adds and removes exceptions without a reset",
			cur:   deny(map[deviceKey]string{{'c', 1, 3}: "rwm", {'c', 1, 5}: "rwm"}),
			known: true,
			want:  deny(map[deviceKey]string{{'c', 1, 3}: "rwm", {'c', 1, 8}: "rw"}),
			rules: []deviceRule{rule(true, 'c', 1, 8, "rw"), rule(false, 'c', 1, 5, "rwm")},
		},
		{
			name:  "narrows access bit by bit",
			cur:   deny(map[deviceKey]string{{'c', 1, 3}: "rwm"}),
			known: true,
			want:  deny(map[deviceKey]string{{'c', 1, 3}: "r"}),
			rules: []deviceRule{rule(false, 'c', 1, 3, "wm")},
		},
		{
			name:  "same state writes nothing",
			cur:   deny(map[deviceKey]string{{'c', 1, 3}: "rwm"}),
			known: true,
			want:  deny(map[deviceKey]string{{'c', 1, 3}: "rwm"}),
		},
		{
			name:  "from allow-all to an allowlist resets first",
			cur:   v1DeviceState{defaultAllow: true},
			want:  deny(map[deviceKey]string{{'c', 1, 3}: "rwm"}),
			rules: []deviceRule{rule(false, 'a', anyDevice, anyDevice, "rwm"), rule(true, 'c', 1, 3, "rwm")},
		},
		{
			name:  "to allow-all with a denylist",
			cur:   deny(map[deviceKey]string{{'c', 1, 3}: "rwm"}),
			known: true,
			want:  v1DeviceState{defaultAllow: true, exceptions: map[deviceKey]string{{'b', 8, 0}: "w"}},
			rules: []deviceRule{rule(true, 'a', anyDevice, anyDevice, "rwm"), rule(false, 'b', 8, 0, "w")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cur.exceptions == nil {
				tt.cur.exceptions = map[deviceKey]string{}
			}
			got := tt.want.transition(tt.cur, tt.known)
			if len(got) != len(tt.rules) || (len(got) > 0 && !reflect.DeepEqual(got, tt.rules)) {
				t.Fatalf("rules %v, want %v", got, tt.rules)
			}
		})
	}
}

// The kernel lists exceptions in the order they were added, and
// runtime-tools checks devices.list against the spec's order.
func TestDeviceTransitionKeepsRuleOrder(t *testing.T) {
	rules := []deviceRule{
		rule(false, 'a', anyDevice, anyDevice, "rwm"),
		rule(true, 'c', 10, 229, "rwm"),
		rule(true, 'b', anyDevice, anyDevice, "m"),
		rule(true, 'c', 1, 3, "rw"),
	}
	got := emulateDeviceRules(rules).transition(v1DeviceState{defaultAllow: true}, false)
	if !reflect.DeepEqual(got, rules) {
		t.Fatalf("rules written %v, want the spec's order %v", got, rules)
	}
}

// For random pairs of rule lists, the transition reaches exactly the new
// state, and on the way (rule by rule) a default-deny cgroup never loses
// access that both the old and the new state grant.
func TestDeviceTransitionRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	randomRules := func() []deviceRule {
		var rs []deviceRule
		if rng.Intn(4) != 0 {
			rs = append(rs, rule(rng.Intn(5) == 0, 'a', anyDevice, anyDevice, "rwm"))
		}
		for n := rng.Intn(8); n > 0; n-- {
			typ := []byte{'b', 'c'}[rng.Intn(2)]
			acc := []string{"r", "w", "m", "rw", "rm", "wm", "rwm"}[rng.Intn(7)]
			rs = append(rs, rule(rng.Intn(3) != 0, typ, int64(rng.Intn(3)), int64(rng.Intn(3))-1, acc))
		}
		return rs
	}
	for i := 0; i < 2000; i++ {
		cur, want := emulateDeviceRules(randomRules()), emulateDeviceRules(randomRules())
		rules := want.transition(cur, !cur.defaultAllow)
		if got := cur.apply(rules); !sameState(got, want) {
			t.Fatalf("from %+v via %v: got %+v, want %+v", cur, rules, got, want)
		}
		if cur.defaultAllow || want.defaultAllow {
			continue
		}
		st := cur
		for _, r := range rules {
			st = st.apply([]deviceRule{r})
			for k, acc := range cur.exceptions {
				both := subtractAccess(acc, subtractAccess(acc, want.exceptions[k]))
				if subtractAccess(both, st.exceptions[k]) != "" {
					t.Fatalf("from %+v to %+v: after %v, %v lost %q", cur, want, r, k, both)
				}
			}
		}
	}
}
