#!/bin/sh
# Regenerates tests/data/image and the fuzz_image seed corpus from nothing:
# every image is synthetic. Needs a C compiler, the libjpeg-turbo and libpng
# development headers, and cjpeg (Debian: libjpeg-turbo-progs).
# Usage: sh tests/data/image/make.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
corpus=$here/../../fuzz/corpus/fuzz_image
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -std=c11 -O1 -Wall -o "$tmp/gen" "$here/gen.c" -ljpeg -lpng
gen=$tmp/gen

# Unit-test data: a 37x23 pattern (odd sizes exercise the edge handling of
# chroma upsampling) and JPEGs of it in the common encodings.
cd "$here"
"$gen" pattern 37 23 color.ppm
cjpeg -quality 85 color.ppm > color.jpg
cjpeg -quality 85 -sample 1x1 -progressive color.ppm > color_444_prog.jpg
cjpeg -quality 85 -sample 2x1 -restart 1 -optimize color.ppm > color_422_rst.jpg
cjpeg -quality 85 -grayscale color.ppm > grey.jpg
"$gen" cmyk cmyk.jpg
"$gen" cmyk ycck.jpg ycck

# Seed corpus: one of each kind, a few hundred bytes each (one of 15 KB),
# plus broken ones.
mkdir -p "$corpus"
cd "$corpus"
"$gen" pattern 12 8 "$tmp/small.ppm"
cp "$tmp/small.ppm" p6.ppm
"$gen" pgm16 p5_16bit.pgm
cjpeg -quality 75 "$tmp/small.ppm" > baseline.jpg
cjpeg -quality 75 -progressive -sample 1x1 "$tmp/small.ppm" > progressive.jpg
cjpeg -quality 75 -grayscale "$tmp/small.ppm" > grey.jpg
"$gen" exif baseline.jpg exif6_mm.jpg 6 MM
"$gen" exif progressive.jpg exif8_ii.jpg 8 II
cp "$here/cmyk.jpg" cmyk.jpg
for kind in rgb8 pal_interlaced grey16_alpha grey1 rgba16; do "$gen" png $kind $kind.png; done
head -c 300 baseline.jpg > broken_truncated.jpg
n=$(wc -c < rgba16.png)
head -c $((n * 2 / 3)) rgba16.png > broken_truncated.png
# large enough (512K pixels) for a two-thread decode to split it in halves
"$gen" pattern 1024 512 "$tmp/large.ppm"
cjpeg -quality 25 "$tmp/large.ppm" > split_1024x512.jpg
# a PPM header claiming 100000x100000 pixels
printf 'P6\n100000 100000\n255\n\001\002\003' > broken_huge.ppm
# a bit flipped in the middle of the entropy-coded data
cp baseline.jpg broken_bitflip.jpg
printf '\377' | dd of=broken_bitflip.jpg bs=1 seek=400 conv=notrunc 2>/dev/null
ls -l "$here" "$corpus"
