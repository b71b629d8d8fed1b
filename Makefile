# berth: build every binary into bin/, install them, run the tests.
GO       ?= go
PREFIX   ?= /usr/local
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null)
GOFLAGS  ?= -trimpath
LDFLAGS  := -s -w -X main.version=$(VERSION)
BINARIES := berth-runtime berthd berth berth-shim berth-inflate

.PHONY: all $(BINARIES) install test test-unit test-integration conformance bench fmt vet clean

all: $(BINARIES)

# berth-runtime links statically (libseccomp and libc included): no
# dynamic loader at each of its two starts per container, and no library
# the container's mount namespace could swap.
berth-runtime:
	CGO_ENABLED=1 $(GO) build $(GOFLAGS) -tags netgo,osusergo -ldflags "$(LDFLAGS) -linkmode external -extldflags -static" -o bin/$@ ./cmd/$@

# The engine daemon and the CLI are pure Go.
berthd berth:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -ldflags "$(LDFLAGS) -X main.commit=$(COMMIT)" -o bin/$@ ./cmd/$@

# The shim, one per container, is a small C program (shim/c): an idle one
# keeps about a tenth of the memory a Go program's runtime alone does.
berth-shim:
	shim/c/build.sh bin/$@

# berth-inflate inflates gzip layers with ISA-L into memory berthd shares
# (archive/inflate): it needs ISA-L's headers (Debian's libisal-dev) to
# build and its library (libisal2) to run. Without the headers it is not
# built (build.sh says so), and berthd uses igzip or its own decoder.
berth-inflate:
	archive/inflate/build.sh bin/$@

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(wildcard $(addprefix bin/,$(BINARIES))) $(DESTDIR)$(PREFIX)/bin/

# Every test: unit tests, and as root the tests that run real containers.
test: all
	$(GO) test -count=1 -p 1 ./...

test-unit:
	$(GO) test -count=1 -short ./...

test-integration: all
	$(GO) test -count=1 -v ./tests/...

conformance: all
	conformance/runtime-tools.sh $(CURDIR)/bin/berth-runtime

bench: all
	bench/runtime.sh

fmt:
	gofmt -l -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf bin

# The cgroup, runtime library and runtime tests again on a cgroup v2 kernel:
# Debian's kernel under qemu with only cgroup2 mounted (tests/vm/README.md).
.PHONY: test-cgroup2
test-cgroup2:
	tests/vm/run.sh
