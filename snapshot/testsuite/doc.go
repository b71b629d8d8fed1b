// Package testsuite is the conformance suite every snapshot.Snapshotter
// passes: the lifecycle, the errors, labels, usage, deep chains, crash-free
// reopening. A driver's test calls Run with a constructor; the suite gives
// each test its own root directory and unmounts everything it mounts, even
// when a test fails.
package testsuite
