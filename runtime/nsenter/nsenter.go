// Package nsenter links in the C constructor that moves berth's container
// init into its namespaces before the Go runtime starts. Importing it (for
// its side effect) is all a binary needs; see nsenter.c for the protocol.
package nsenter

/*
#cgo CFLAGS: -Wall -O2
extern void berth_nsenter(void);
void __attribute__((constructor)) berth_nsenter_init(void) {
	berth_nsenter();
}
*/
import "C"

// Env names the variable that carries the bootstrap socket's descriptor
// number to the constructor.
const Env = "_BERTH_INITPIPE"
