#!/usr/bin/env bash
# Install the system packages mtlscope needs to build and test on a fresh Debian/Ubuntu machine.
set -euo pipefail
need=()
dpkg -s libpcap-dev >/dev/null 2>&1 || need+=(libpcap-dev)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# A C compiler: Rust links with it, and mimalloc (the allocator) is built from C.
command -v cc >/dev/null 2>&1 || need+=(gcc)
# The live tests (tests/live.rs): network namespaces and veth pairs (as root), an mTLS server
# and clients, and a terminal to drive the UI in. Each test skips, saying why, without them.
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "setup: system packages present (libpcap-dev, python3, gcc, iproute2, openssl, curl, tmux)"
