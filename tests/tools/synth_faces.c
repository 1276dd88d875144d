/*
 * synth_faces.c - writes a small folder-per-identity dataset of synthetic
 * "faces" for the training tests, so they need no photos: each identity is
 * a head of its own shape and colours, with eyes, brows and a mouth of its
 * own sizes and places; each image of it moves, scales and relights the
 * head a little and adds noise. A network that learns these traits on some
 * identities can tell others apart, which is what the tests check.
 *
 *   synth_faces DIR IDENTITIES IMAGES [SIZE [SEED]]
 * writes DIR/idN/M.ppm for N in 1..IDENTITIES, M in 1..IMAGES (binary P6).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static uint64_t st;
static double urand(void) { /* xorshift64*, [0, 1) */
    st ^= st >> 12;
    st ^= st << 25;
    st ^= st >> 27;
    return (double)((st * 2685821657736338717ull) >> 11) * 0x1.0p-53;
}
static double range(double lo, double hi) { return lo + (hi - lo) * urand(); }

typedef struct person {
    double head_w, head_h, skin[3], hair[3], hair_h, eye_dx, eye_y, eye_r, eye[3], brow, mouth_w, mouth_y, nose;
} person;

static void draw(const person *p, int size, double dx, double dy, double sc, double light, unsigned char *img) {
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            /* Coordinates in the head's frame, -1..1 across the chip. */
            const double u = ((x + 0.5) / size * 2 - 1 - dx) / sc, v = ((y + 0.5) / size * 2 - 1 - dy) / sc;
            double c[3] = {40, 40, 45};
            const double head = (u * u) / (p->head_w * p->head_w) + (v * v) / (p->head_h * p->head_h);
            if (head < 1) {
                for (int k = 0; k < 3; k++) c[k] = p->skin[k] * (1 - 0.25 * head);
                if (v < -p->head_h + p->hair_h)
                    for (int k = 0; k < 3; k++) c[k] = p->hair[k];
                for (int s = -1; s <= 1; s += 2) {
                    const double ex = u - s * p->eye_dx, ey = v - p->eye_y;
                    if (ex * ex + ey * ey < p->eye_r * p->eye_r)
                        for (int k = 0; k < 3; k++) c[k] = p->eye[k];
                    if (fabs(ex) < p->eye_r * 1.4 && ey < -p->eye_r * 1.6 && ey > -p->eye_r * 1.6 - p->brow)
                        for (int k = 0; k < 3; k++) c[k] = p->hair[k] * 0.8;
                }
                if (fabs(u) < p->nose && v > p->eye_y && v < p->mouth_y - 0.12)
                    for (int k = 0; k < 3; k++) c[k] *= 0.8;
                if (fabs(u) < p->mouth_w && fabs(v - p->mouth_y) < 0.04) c[0] = 150, c[1] = 40, c[2] = 50;
            }
            for (int k = 0; k < 3; k++) {
                double val = c[k] * light + range(-12, 12);
                img[(y * size + x) * 3 + k] = (unsigned char)(val < 0 ? 0 : val > 255 ? 255 : val);
            }
        }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: synth_faces DIR IDENTITIES IMAGES [SIZE [SEED]]\n");
        return 2;
    }
    const int n_ids = atoi(argv[2]), n_img = atoi(argv[3]), size = argc > 4 ? atoi(argv[4]) : 64;
    st = argc > 5 ? strtoull(argv[5], NULL, 10) * 0x9E3779B97F4A7C15ull + 1 : 12345;
    if (n_ids < 1 || n_img < 1 || size < 8 || size > 1024) return 2;
    mkdir(argv[1], 0777);
    unsigned char *img = malloc((size_t)size * size * 3);
    if (!img) return 1;
    for (int i = 1; i <= n_ids; i++) {
        person p = {range(0.45, 0.75), range(0.6, 0.85), {range(120, 240), range(90, 200), range(70, 180)},
                    {range(10, 200), range(10, 150), range(10, 120)}, range(0.15, 0.5), range(0.15, 0.35),
                    range(-0.25, 0.05), range(0.05, 0.12), {range(0, 120), range(0, 160), range(0, 200)},
                    range(0.02, 0.08), range(0.1, 0.35), range(0.35, 0.6), range(0.03, 0.1)};
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/id%d", argv[1], i);
        mkdir(dir, 0777);
        for (int m = 1; m <= n_img; m++) {
            draw(&p, size, range(-0.08, 0.08), range(-0.08, 0.08), range(0.92, 1.08), range(0.75, 1.25), img);
            char path[4200];
            snprintf(path, sizeof path, "%s/%d.ppm", dir, m);
            FILE *f = fopen(path, "wb");
            if (!f) return 1;
            fprintf(f, "P6\n%d %d\n255\n", size, size);
            fwrite(img, 1, (size_t)size * size * 3, f);
            if (fclose(f) != 0) return 1;
        }
    }
    free(img);
    return 0;
}
