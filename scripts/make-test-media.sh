#!/usr/bin/env bash
# Generate the clips in test-media/ (see test-media/README.md).
#
# Idempotent: each clip is rebuilt from scratch into a temporary file and moved into place, so a
# second run gives the same files. Deterministic: fixed videotestsrc patterns, x264enc with
# threads=1 (no sliced threading), scenecut=0, key-int-max=50, bframes=0, 25 fps, constant
# bitrate; corrupt.mp4 uses an AES-128-CTR keystream with a fixed key as its "seeded" pattern.
#
# Needs: gst-launch-1.0 with x264enc (gstreamer1.0-plugins-ugly), timeoverlay (gstreamer1.0-x or
# -plugins-base), qtdemux/mp4mux/avidemux (-good), avdec_* (gstreamer1.0-libav); apt-get, dpkg-deb
# and tar for the real-footage clip; openssl for the corruption pattern.
#
# Usage: scripts/make-test-media.sh [--force]     (without --force, existing clips are kept)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/test-media"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1
mkdir -p "$OUT"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# The H.264 settings every clip shares. tune=zerolatency is not used: it implies sliced threads.
X264="x264enc threads=1 key-int-max=50 bframes=0 option-string=scenecut=0 speed-preset=medium"

need() {
    command -v "$1" >/dev/null 2>&1 || { echo "make-test-media: '$1' not found; $2" >&2; exit 1; }
}
need gst-launch-1.0 "install gstreamer1.0-tools"
need gst-inspect-1.0 "install gstreamer1.0-tools"
for element in x264enc timeoverlay mp4mux qtdemux h264parse videorate videoscale videocrop; do
    gst-inspect-1.0 "$element" >/dev/null 2>&1 ||
        { echo "make-test-media: GStreamer element '$element' missing (see docs in toolchain notes)" >&2; exit 1; }
done

# mp4mux stamps the wall-clock time into mvhd/tkhd/mdhd (creation and modification time) and has
# no property to fix it; zero those fields so a rebuild is byte-identical. Walks the box tree
# (moov > trak > mdia), so bytes in mdat that happen to spell "mvhd" are never touched.
zero_mp4_times() {
    perl -e '
        use strict; use warnings;
        my $path = shift; open(my $fh, "+<:raw", $path) or die "$path: $!";
        local $/; my $data = <$fh>;
        my %container = map { $_ => 1 } qw(moov trak mdia);
        my %stamped = map { $_ => 1 } qw(mvhd tkhd mdhd);
        sub walk {
            my ($data, $start, $end) = @_;
            my $pos = $start;
            while ($pos + 8 <= $end) {
                my ($size, $type) = unpack("N a4", substr($$data, $pos, 8));
                my $header = 8;
                if ($size == 1) { $size = unpack("Q>", substr($$data, $pos + 8, 8)); $header = 16; }
                elsif ($size == 0) { $size = $end - $pos; }
                last if $size < $header || $pos + $size > $end;
                if ($container{$type}) { walk($data, $pos + $header, $pos + $size); }
                elsif ($stamped{$type}) {
                    my $version = unpack("C", substr($$data, $pos + $header, 1));
                    my $len = $version == 1 ? 16 : 8;
                    substr($$data, $pos + $header + 4, $len) = "\0" x $len;
                }
                $pos += $size;
            }
        }
        walk(\$data, 0, length($data));
        seek($fh, 0, 0); print $fh $data; close($fh);
    ' "$1"
}

skip_existing() {
    if [[ $FORCE -eq 0 && -s "$OUT/$1" ]]; then
        echo "make-test-media: $1 exists, kept (use --force to rebuild)"
        return 0
    fi
    return 1
}

# synthetic NAME WIDTH HEIGHT FRAMES BITRATE_KBPS
# SMPTE bars scrolling 4 px per frame with the running time burnt in: every frame differs, so a
# frozen stream is visible, and the pattern is the same on every run.
synthetic() {
    local name=$1 width=$2 height=$3 frames=$4 kbps=$5
    skip_existing "$name" && return 0
    echo "make-test-media: $name (${width}x${height}, $frames frames at 25 fps, $kbps kbit/s)"
    gst-launch-1.0 -q \
        videotestsrc pattern=smpte horizontal-speed=4 num-buffers="$frames" \
        ! "video/x-raw,format=I420,width=$width,height=$height,framerate=25/1,pixel-aspect-ratio=1/1" \
        ! timeoverlay font-desc="Sans 24" halignment=left valignment=bottom \
        ! $X264 bitrate="$kbps" \
        ! h264parse ! mp4mux ! filesink location="$WORK/$name"
    zero_mp4_times "$WORK/$name"
    mv "$WORK/$name" "$OUT/$name"
}

synthetic synthetic-360p.mp4 640 360 500 800   # 20 s
synthetic synthetic-720p.mp4 1280 720 250 1500 # 10 s

# Real footage: OpenCV's samples/data/vtest.avi (768x576, 10 fps, DivX 3, 79.5 s) from Debian's
# opencv-doc package. The 4:3 frame is cropped to 16:9 (72 rows off the top and the bottom, no
# stretching), scaled to 640x360, and frames are repeated by videorate to 25 fps.
vtest() {
    local name=vtest-360p.mp4
    skip_existing "$name" && return 0
    local avi=./usr/share/doc/opencv-doc/examples/data/vtest.avi
    if ! (cd "$WORK" && apt-get download opencv-doc >/dev/null 2>&1); then
        echo "make-test-media: SKIPPED $name: 'apt-get download opencv-doc' failed" \
             "(no Debian mirror reachable?); the other clips are still made" >&2
        return 0
    fi
    (cd "$WORK" && dpkg-deb --fsys-tarfile opencv-doc_*.deb | tar -x "$avi")
    echo "make-test-media: $name (vtest.avi cropped 768x432, scaled 640x360, 25 fps, 600 kbit/s)"
    gst-launch-1.0 -q \
        filesrc location="$WORK/$avi" ! avidemux ! decodebin \
        ! videoconvert ! videocrop top=72 bottom=72 ! videoscale \
        ! videorate \
        ! "video/x-raw,format=I420,width=640,height=360,framerate=25/1,pixel-aspect-ratio=1/1" \
        ! $X264 bitrate=600 \
        ! h264parse ! mp4mux ! filesink location="$WORK/$name"
    zero_mp4_times "$WORK/$name"
    mv "$WORK/$name" "$OUT/$name"
}
vtest

# corrupt.mp4: synthetic-360p.mp4 cut to its first 1 MiB (the moov index sits at the end of an
# mp4mux file, so it is gone) with 64 KiB at offset 256 KiB overwritten by a fixed keystream
# (AES-128-CTR, key 0x5eed..., i.e. a seeded pseudo-random pattern).
corrupt() {
    local name=corrupt.mp4
    skip_existing "$name" && return 0
    need openssl "install openssl"
    echo "make-test-media: $name (first 1 MiB of synthetic-360p.mp4, 64 KiB at 256 KiB overwritten)"
    head -c 1048576 "$OUT/synthetic-360p.mp4" >"$WORK/$name"
    head -c 65536 /dev/zero | openssl enc -aes-128-ctr -nosalt \
        -K 5eed0000000000000000000000005eed -iv 00000000000000000000000000000000 \
        >"$WORK/pattern.bin"
    dd if="$WORK/pattern.bin" of="$WORK/$name" bs=1024 seek=256 conv=notrunc status=none
    mv "$WORK/$name" "$OUT/$name"
}
corrupt

echo "make-test-media: done"
(cd "$OUT" && ls -l -- *.mp4 && sha256sum -- *.mp4)
