package ocispec

import (
	"testing"
)

func TestHostsFile(t *testing.T) {
	base := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n" +
		"ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	tests := []struct {
		name     string
		hostname string
		extra    []string
		want     string
	}{
		{"no address", "web", nil, base + "127.0.0.1\tweb\n"},
		{"address", "web", []string{"172.17.0.2 web", "10.0.0.9   db db.local", "bogus"},
			base + "172.17.0.2\tweb\n10.0.0.9\tdb db.local\n"},
		{"no hostname", "", nil, base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(HostsFile(tt.hostname, tt.extra)); got != tt.want {
				t.Errorf("HostsFile =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestResolvConf(t *testing.T) {
	host := "# generated\nnameserver 127.0.0.53\nnameserver 192.168.1.1\nnameserver ::1\n" +
		"nameserver fd00::1\nsearch lan example.org\noptions edns0 trust-ad\nsortlist 10.0.0.0/8\n"
	tests := []struct {
		name              string
		host              string
		dns, search, opts []string
		want              string
	}{
		{"copy without loopback", host, nil, nil, nil,
			"nameserver 192.168.1.1\nnameserver fd00::1\nsearch lan example.org\noptions edns0 trust-ad\nsortlist 10.0.0.0/8\n"},
		{"overrides", host, []string{"10.0.0.1"}, []string{"corp"}, []string{"ndots:2"},
			"nameserver 10.0.0.1\nsearch corp\noptions ndots:2\nsortlist 10.0.0.0/8\n"},
		{"only loopback", "nameserver 127.0.0.53\noptions edns0\n", nil, nil, nil,
			"# berth: no nameserver: the host has none usable from a container network namespace\noptions edns0\n"},
		{"empty", "", nil, nil, nil,
			"# berth: no nameserver: the host has none usable from a container network namespace\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(ResolvConf([]byte(tt.host), tt.dns, tt.search, tt.opts)); got != tt.want {
				t.Errorf("ResolvConf =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
