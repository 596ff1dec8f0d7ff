#!/usr/bin/env bash
# Install Debian's pdflatex with booktabs and poppler's pdftoppm for the report-export test (idempotent).
set -euo pipefail
bash "$(dirname "$0")/apt_install.sh" latex /usr/share/texlive/texmf-dist/tex/latex/booktabs/booktabs.sty \
    texlive-latex-base texlive-latex-recommended poppler-utils
