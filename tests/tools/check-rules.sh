#!/bin/sh
# The Prometheus rules shipped with the tools (tools/prometheus/): valid
# (promtool check rules), and each alert fires on the series that must
# fire it and on no other (promtool test rules tests/tools/rules-test.yml)
set -e
cd "$(dirname "$0")"
promtool check rules ../../tools/prometheus/qemu-oc.rules.yml
promtool test rules rules-test.yml
