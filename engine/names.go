package engine

import (
	"crypto/rand"
	"math/big"
	"strconv"
)

// Generated container names are "adjective_noun", the noun a thing of the
// sea and its harbours, as docker's are "adjective_scientist".
var (
	nameAdjectives = []string{
		"agile", "amber", "ancient", "azure", "bold", "brave", "breezy", "bright", "calm", "clever",
		"coral", "cosy", "crisp", "daring", "deep", "eager", "early", "fair", "fleet", "friendly",
		"gentle", "golden", "grand", "happy", "hardy", "humble", "jolly", "keen", "kind", "lively",
		"lucky", "merry", "mighty", "misty", "nimble", "noble", "patient", "placid", "proud", "quick",
		"quiet", "rapid", "salty", "serene", "sharp", "shiny", "silent", "silver", "snug", "spry",
		"steady", "stout", "sturdy", "sunny", "swift", "tidy", "trusty", "vivid", "warm", "wise",
	}
	nameNouns = []string{
		"anchor", "atoll", "ballast", "barge", "beacon", "bollard", "bosun", "bow", "breakwater", "buoy",
		"cabin", "capstan", "cargo", "channel", "clipper", "compass", "cove", "crane", "current", "cutter",
		"davit", "deck", "dinghy", "dock", "dolphin", "ferry", "fjord", "galley", "gangway", "harbor",
		"hawser", "helm", "hull", "inlet", "jetty", "keel", "ketch", "lagoon", "lighthouse", "mast",
		"mooring", "narrows", "pier", "pilot", "quay", "reef", "rudder", "sail", "schooner", "shoal",
		"skiff", "slipway", "sloop", "sound", "starboard", "tide", "tug", "wharf", "wake", "yawl",
	}
)

// generateName returns a random name; with suffix a digit is appended, for
// when the plain names collide.
func generateName(suffix bool) string {
	pick := func(list []string) string {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(list))))
		return list[n.Int64()]
	}
	name := pick(nameAdjectives) + "_" + pick(nameNouns)
	if suffix {
		n, _ := rand.Int(rand.Reader, big.NewInt(10))
		name += strconv.FormatInt(n.Int64(), 10)
	}
	return name
}
