#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine with Python 3.11:
# the Debian packages the tests use for real (espeak-ng speech, sox/ffmpeg audio, Chromium + CJK font
# for the browser tests), CPU torch first (so sentence-transformers does not pull the CUDA build),
# then this project with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    espeak-ng sox ffmpeg chromium chromium-driver fonts-wqy-zenhei >/dev/null
else
  echo "apt-get not found: install espeak-ng, sox, ffmpeg, chromium and a CJK font yourself" >&2
fi

python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[test]"
