#!/bin/bash
# The baked node, for real: `packer build -only=docker.node` of packer/ (provision.sh unchanged in
# a container of a debootstrapped Debian 12 base), the exported root file system booted twice
# under systemd-nspawn --boot, both units checked under the live systemd. All of it is
# tests/bake/run.sh (also `make bake-test`); here it runs as one of the integration tests. On a
# machine without the base cached it is made first (debootstrap, about a minute). Where it cannot
# run (not root, no systemd-nspawn, no network namespaces) it prints "# skip: reason".
MS_ROOT=${MS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
exec bash "$MS_ROOT/tests/bake/run.sh"
