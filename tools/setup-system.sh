#!/usr/bin/env bash
# Installs the system packages dealerdocs needs (Debian-like): LibreOffice Writer for the PDF
# step and Draw for the stamps (engine/stamps.py converts SVG through Draw), Noto CJK (Chinese
# glyphs) and Symbola (emoji and symbols customers type), poppler-utils (pdftotext/pdffonts/
# pdftoppm used by tests and checks), graphviz (`dot` draws the workflow diagrams, see
# engine/diagram.py), python3-venv, python3-uno (LibreOffice's Python, for the warm
# converter's worker, see engine/office.py), and Chromium with its driver (the web app's
# browser tests, tests/test_web_browser.py), libzbar0 (pyzbar reads the QR code on every issued
# page in the tests, and in `dealerdocs check` of a PDF without the URL in its metadata), and
# PostgreSQL (a dealer group's store; the tests start a server of their own with its initdb,
# tests/postgres_server.py; no service is enabled).
# As root it installs what is missing; otherwise it prints the exact command and fails.
set -euo pipefail

packages=(fonts-noto-cjk fonts-symbola poppler-utils fontconfig graphviz python3-venv python3-uno
          chromium chromium-driver postgresql libzbar0)
# The headless builds of Writer and Draw are smaller; fall back to the full ones where they do
# not exist.
office=libreoffice-writer-nogui
draw=libreoffice-draw-nogui

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ! command -v soffice >/dev/null 2>&1; then
  missing+=("$office")
fi
if ! dpkg -s "$draw" >/dev/null 2>&1 && ! dpkg -s libreoffice-draw >/dev/null 2>&1; then
  missing+=("$draw")
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "dealerdocs needs: ${missing[*]} (and LibreOffice Writer and Draw); install them with your package manager." >&2
  exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "Missing system packages. Run as root:" >&2
  echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "Installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
  # e.g. a distribution without the -nogui package
  missing=("${missing[@]/$office/libreoffice-writer}")
  missing=("${missing[@]/$draw/libreoffice-draw}")
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
fc-cache -f >/dev/null 2>&1 || true
