# 00-base.sh (sourced by scripts/test-deps.sh): dig for the DNS tests.
need_packages dig=dnsutils
