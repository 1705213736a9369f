#!/bin/sh
# What the test suite needs beyond pip: the page test (tests/runtime/test_serve_page.py)
# drives a real headless Chromium through chromedriver. The README's test command runs
# this script before pytest, so a fresh machine without a browser still passes.
#   present            -> nothing to do
#   missing, root, apt -> installs Debian's chromium and chromium-driver
#   otherwise          -> says what to install, and fails (the page test is never skipped)
# ZOO_APT_GET overrides the apt-get command (the tests use a stand-in).
set -u
have() { command -v "$1" >/dev/null 2>&1; }
browser=""
for name in chromium chromium-browser google-chrome; do
    if have "$name"; then browser=$name; break; fi
done
if [ -n "$browser" ] && have chromedriver; then
    exit 0
fi
apt=${ZOO_APT_GET:-apt-get}
if [ "$(id -u)" = 0 ] && have "$apt"; then
    echo "tests/install_browser.sh: installing chromium and chromium-driver for the page test (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    if "$apt" update -q >/dev/null && "$apt" install -y -q --no-install-recommends chromium chromium-driver >/dev/null; then
        exit 0
    fi
    echo "tests/install_browser.sh: apt-get could not install chromium and chromium-driver" >&2
    exit 1
fi
echo "tests/install_browser.sh: the page test needs Chromium and chromedriver on PATH;" \
     "install them (Debian/Ubuntu: sudo apt-get install chromium chromium-driver) and run the tests again" >&2
exit 1
