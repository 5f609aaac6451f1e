#!/usr/bin/env bash
# Regenerates sandbox/assets/sample.mp4, the video every sandbox video task returns: one second of a 96x64
# test pattern, H.264 baseline, yuv420p, moov first (faststart) so a browser can play it while it loads.
# Needs ffmpeg (Debian: apt-get install ffmpeg); the result is committed, so nothing needs ffmpeg at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=96x64:rate=12:duration=1" \
  -c:v libx264 -profile:v baseline -level 3.0 -pix_fmt yuv420p -preset veryslow -crf 32 \
  -movflags +faststart -map_metadata -1 -fflags +bitexact -flags:v +bitexact sandbox/assets/sample.mp4
