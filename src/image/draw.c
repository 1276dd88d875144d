/* draw.c - boxes and landmark dots drawn onto an image, to look at results. */
#include "image/image.h"

static void put(facenet_image *img, int x, int y, const uint8_t rgb[3]) {
    if (x < 0 || y < 0 || x >= img->width || y >= img->height) return;
    uint8_t *p = img->data + ((size_t)y * img->width + x) * img->channels;
    if (img->channels == 3) {
        p[0] = rgb[0];
        p[1] = rgb[1];
        p[2] = rgb[2];
    } else {
        p[0] = (uint8_t)((rgb[0] * 77 + rgb[1] * 150 + rgb[2] * 29) >> 8);
    }
}

static void fill(facenet_image *img, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > img->width) x1 = img->width;
    if (y1 > img->height) y1 = img->height;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) put(img, x, y, rgb);
}

/* Clamp a float coordinate into int range before converting. */
static int coord(float v) {
    if (!(v > -1e6f)) return -1000000;
    if (v > 1e6f) return 1000000;
    return (int)(v < 0 ? v - 0.5f : v + 0.5f);
}

void facenet_draw_faces(facenet_image *img, const facenet_face *faces, int n) {
    if (!img || !img->data || (img->channels != 1 && img->channels != 3) || !faces) return;
    static const uint8_t box_rgb[3] = {0, 230, 64}, dot_rgb[3] = {255, 40, 40};
    int side = img->width < img->height ? img->width : img->height;
    int t = side / 400 > 2 ? side / 400 : 2;
    for (int i = 0; i < n; i++) {
        const facenet_face *f = &faces[i];
        int x0 = coord(f->x), y0 = coord(f->y), x1 = coord(f->x + f->width), y1 = coord(f->y + f->height);
        fill(img, x0, y0, x1, y0 + t, box_rgb);
        fill(img, x0, y1 - t, x1, y1, box_rgb);
        fill(img, x0, y0, x0 + t, y1, box_rgb);
        fill(img, x1 - t, y0, x1, y1, box_rgb);
        int r = t > 2 ? t / 2 + 1 : 1;
        for (int k = 0; k < FACENET_LANDMARKS; k++) {
            int cx = coord(f->landmarks[2 * k]), cy = coord(f->landmarks[2 * k + 1]);
            fill(img, cx - r, cy - r, cx + r + 1, cy + r + 1, dot_rgb);
        }
    }
}
