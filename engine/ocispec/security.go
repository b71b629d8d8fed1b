package ocispec

import (
	"strconv"
	"strings"
)

// securityOpts are the parsed --security-opt values.
type securityOpts struct {
	noNewPrivileges bool
	// seccomp is "" for the default profile, "unconfined", or a profile
	// in JSON.
	seccomp string
	// systemPathsUnconfined drops masked and read-only paths.
	systemPathsUnconfined bool
	apparmor              string
	labels                []string
	labelDisable          bool
}

// parseSecurityOpts reads --security-opt values; key and value are
// separated by "=" or, as older clients wrote, ":".
func parseSecurityOpts(opts []string) (securityOpts, error) {
	var s securityOpts
	for _, opt := range opts {
		if opt == "no-new-privileges" {
			s.noNewPrivileges = true
			continue
		}
		key, value, ok := strings.Cut(opt, "=")
		if !ok {
			key, value, ok = strings.Cut(opt, ":")
		}
		if !ok {
			return s, invalidf("invalid --security-opt: %q", opt)
		}
		switch key {
		case "no-new-privileges":
			b, err := strconv.ParseBool(value)
			if err != nil {
				return s, invalidf("invalid --security-opt %q: %q is not a boolean", opt, value)
			}
			s.noNewPrivileges = b
		case "seccomp":
			if value == "" {
				return s, invalidf("invalid --security-opt %q: empty seccomp profile", opt)
			}
			if value != "unconfined" && value != "builtin" && !strings.HasPrefix(strings.TrimSpace(value), "{") {
				return s, invalidf("invalid --security-opt %q: seccomp wants unconfined, builtin or the profile's JSON (the client reads the file)", opt)
			}
			if value == "builtin" {
				value = ""
			}
			s.seccomp = value
		case "systempaths":
			if value != "unconfined" {
				return s, invalidf("invalid --security-opt %q: systempaths only takes unconfined", opt)
			}
			s.systemPathsUnconfined = true
		case "apparmor":
			s.apparmor = value
		case "label":
			if value == "disable" {
				s.labelDisable = true
			} else {
				s.labels = append(s.labels, value)
			}
		default:
			return s, invalidf("invalid --security-opt %q", opt)
		}
	}
	return s, nil
}
