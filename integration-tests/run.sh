#!/usr/bin/env bash
# QEMU end-to-end scenarios (integration-tests/scenarios.py, run by harness.py):
#   integration-tests/run.sh              all of them (two QEMUs at a time)
#   integration-tests/run.sh NAME...      only these, e.g. dhcp-good
#   integration-tests/run.sh --list       their names and what each shows
# Run as root on Debian 12 after scripts/setup.sh.
exec python3 "$(dirname "$0")/scenarios.py" "$@"
