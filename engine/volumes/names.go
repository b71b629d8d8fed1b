package volumes

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
)

// nameChars is the pattern dockerd quotes when it refuses a name.
const nameChars = "[a-zA-Z0-9][a-zA-Z0-9_.-]"

var namePattern = regexp.MustCompile("^" + nameChars + "+$")

// validateName checks a volume name as dockerd's local driver does, with
// its wording. The caller adds the category (ErrInvalidArgument) and the
// context ("create <name>: ").
func validateName(name string) error {
	if len(name) == 1 {
		return errors.New("volume name is too short, names should be at least two alphanumeric characters")
	}
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%q includes invalid characters for a local volume name, only %q are allowed. If you intended to pass a host directory, use absolute path", name, nameChars)
	}
	return nil
}

// newName returns a name for a volume created without one: 64 hex digits,
// like a container ID.
func newName() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
