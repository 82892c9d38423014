# chromium.sh (sourced by scripts/test-deps.sh): Debian's headless-capable
# Chromium for the status page's browser test (cmd/vipbridge/ui_chromium_test.go).
need_packages chromium=chromium
