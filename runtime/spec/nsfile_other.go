//go:build !linux

package spec

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var errNotLinux = errors.New("namespaces exist on Linux only")

func namespaceFileType(string) (specs.LinuxNamespaceType, error) { return "", errNotLinux }

func kernelHasNamespace(specs.LinuxNamespaceType) error { return errNotLinux }

func sameFile(string, string) (bool, error) { return false, errNotLinux }
