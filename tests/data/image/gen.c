/*
 * gen.c - writes the synthetic images behind tests/data/image and the
 * fuzz_image seed corpus; run by make.sh next to it (not part of the build).
 *
 *   gen pattern W H OUT.ppm          colour test pattern (P6)
 *   gen cmyk OUT.jpg [ycck]          Adobe CMYK (or YCCK) JPEG of a pattern
 *   gen png KIND OUT.png             rgb8 | pal_interlaced | grey16_alpha | grey1 | rgba16
 *   gen pgm16 OUT.pgm                16-bit PGM (maxval 1000) with header comments
 *   gen exif IN.jpg OUT.jpg N II|MM  IN with an EXIF APP1 orientation N after SOI
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

/* Smooth gradients (so JPEG keeps them) with a red block in the top-left
 * corner, so any flip or rotation is visible. */
static void pattern(int w, int h, int x, int y, unsigned char rgb[3]) {
    rgb[0] = (unsigned char)(x * 255 / (w - 1));
    rgb[1] = (unsigned char)(y * 255 / (h - 1));
    rgb[2] = (unsigned char)(128 + (x - y) * 2);
    if (x < w / 4 && y < h / 3) rgb[0] = 250, rgb[1] = 20, rgb[2] = 20;
}

static unsigned char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)len);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return b;
}

static int cmd_pattern(int w, int h, const char *out) {
    FILE *f = fopen(out, "wb");
    if (!f) return 1;
    fprintf(f, "P6\n# facenet test pattern\n%d %d\n255\n", w, h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char p[3];
            pattern(w, h, x, y, p);
            fwrite(p, 1, 3, f);
        }
    return fclose(f) != 0;
}

static int cmd_cmyk(const char *out, int ycck) {
    const int w = 13, h = 9;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr je;
    c.err = jpeg_std_error(&je);
    jpeg_create_compress(&c);
    FILE *f = fopen(out, "wb");
    if (!f) return 1;
    jpeg_stdio_dest(&c, f);
    c.image_width = w;
    c.image_height = h;
    c.input_components = 4;
    c.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    if (ycck) jpeg_set_colorspace(&c, JCS_YCCK);
    c.write_Adobe_marker = TRUE;
    jpeg_start_compress(&c, TRUE);
    unsigned char row[13 * 4];
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            row[4 * x] = (unsigned char)(x * 19);
            row[4 * x + 1] = (unsigned char)(y * 27);
            row[4 * x + 2] = (unsigned char)((x * y * 7) & 255);
            row[4 * x + 3] = (unsigned char)(255 - x * 9 - y * 5);
        }
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return fclose(f) != 0;
}

static int cmd_png(const char *kind, const char *out) {
    const int w = 11, h = 7;
    int ct, depth, interlace = PNG_INTERLACE_NONE;
    if (!strcmp(kind, "rgb8")) ct = PNG_COLOR_TYPE_RGB, depth = 8;
    else if (!strcmp(kind, "pal_interlaced"))
        ct = PNG_COLOR_TYPE_PALETTE, depth = 4, interlace = PNG_INTERLACE_ADAM7;
    else if (!strcmp(kind, "grey16_alpha")) ct = PNG_COLOR_TYPE_GRAY_ALPHA, depth = 16;
    else if (!strcmp(kind, "grey1")) ct = PNG_COLOR_TYPE_GRAY, depth = 1;
    else if (!strcmp(kind, "rgba16")) ct = PNG_COLOR_TYPE_RGB_ALPHA, depth = 16;
    else return 1;
    FILE *f = fopen(out, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!f || !png || !info || setjmp(png_jmpbuf(png))) return 1;
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, depth, ct, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (ct == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[16];
        png_byte trans[2] = {0, 128};
        for (int i = 0; i < 16; i++) pal[i].red = (png_byte)(i * 17), pal[i].green = (png_byte)(255 - i * 17),
                                     pal[i].blue = (png_byte)(i * 5);
        png_set_PLTE(png, info, pal, 16);
        png_set_tRNS(png, info, trans, 2, NULL);
    }
    png_write_info(png, info);
    int passes = png_set_interlace_handling(png);
    size_t rowbytes = png_get_rowbytes(png, info);
    unsigned char *img = calloc((size_t)h, rowbytes);
    for (int y = 0; y < h; y++) {
        unsigned char *r = img + (size_t)y * rowbytes;
        for (size_t i = 0; i < rowbytes; i++) r[i] = (unsigned char)(i * 29 + (size_t)y * 41);
    }
    for (int p = 0; p < passes; p++)
        for (int y = 0; y < h; y++) png_write_row(png, img + (size_t)y * rowbytes);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(img);
    return fclose(f) != 0;
}

static int cmd_pgm16(const char *out) {
    const int w = 9, h = 5;
    FILE *f = fopen(out, "wb");
    if (!f) return 1;
    fprintf(f, "P5 # 16-bit grey\n%d # width\n%d\n1000\n", w, h);
    for (int i = 0; i < w * h; i++) {
        unsigned v = (unsigned)(i * 23 % 1001);
        fputc((int)(v >> 8), f);
        fputc((int)(v & 255), f);
    }
    return fclose(f) != 0;
}

static void put16(unsigned char *p, unsigned v, int le) {
    p[le ? 0 : 1] = (unsigned char)(v & 255);
    p[le ? 1 : 0] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, unsigned long v, int le) {
    for (int i = 0; i < 4; i++) p[le ? i : 3 - i] = (unsigned char)(v >> (8 * i));
}

static int cmd_exif(const char *in, const char *out, int orientation, int le) {
    size_t n;
    unsigned char *src = read_file(in, &n);
    if (!src || n < 2) return 1;
    /* APP1: "Exif\0\0", TIFF header, IFD0 with two entries (a harmless
     * XResolution-like SHORT first, then Orientation), next-IFD 0. */
    unsigned char seg[4 + 6 + 8 + 2 + 24 + 4];
    size_t len = sizeof seg - 2;
    seg[0] = 0xFF, seg[1] = 0xE1, seg[2] = (unsigned char)(len >> 8), seg[3] = (unsigned char)len;
    memcpy(seg + 4, "Exif\0\0", 6);
    unsigned char *t = seg + 10;
    t[0] = t[1] = le ? 'I' : 'M';
    put16(t + 2, 42, le);
    put32(t + 4, 8, le);
    put16(t + 8, 2, le);
    unsigned char *e = t + 10;
    put16(e, 0x0128, le), put16(e + 2, 3, le), put32(e + 4, 1, le), put16(e + 8, 2, le), put16(e + 10, 0, le);
    e += 12;
    put16(e, 0x0112, le), put16(e + 2, 3, le), put32(e + 4, 1, le), put16(e + 8, (unsigned)orientation, le),
        put16(e + 10, 0, le);
    put32(e + 12, 0, le);
    FILE *f = fopen(out, "wb");
    if (!f) return 1;
    fwrite(src, 1, 2, f);
    fwrite(seg, 1, sizeof seg, f);
    fwrite(src + 2, 1, n - 2, f);
    free(src);
    return fclose(f) != 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "pattern")) return cmd_pattern(atoi(argv[2]), atoi(argv[3]), argv[4]);
    if ((argc == 3 || argc == 4) && !strcmp(argv[1], "cmyk")) return cmd_cmyk(argv[2], argc == 4);
    if (argc == 4 && !strcmp(argv[1], "png")) return cmd_png(argv[2], argv[3]);
    if (argc == 3 && !strcmp(argv[1], "pgm16")) return cmd_pgm16(argv[2]);
    if (argc == 6 && !strcmp(argv[1], "exif"))
        return cmd_exif(argv[2], argv[3], atoi(argv[4]), !strcmp(argv[5], "II"));
    fprintf(stderr, "usage: see the comment at the top of gen.c\n");
    return 2;
}
