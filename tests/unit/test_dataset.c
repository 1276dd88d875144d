/*
 * test_dataset.c - the data side of training (src/train/dataset.h): people
 * lists and their line-numbered errors, name patterns, listing a folder-per-
 * identity tree and choosing identities, chips of ready-made images, the
 * chip cache reader, the P x K sampler, augmentation and the loader thread,
 * all reproducible from a seed. The real LFW people lists and AT&T folders
 * are read too when the shared data is present.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "eval/cache.h"
#include "train/dataset.h"

/* ------------------------------------------------------------ people lists */

static fn_people *people_ok(const char *text) {
    fn_people *p = NULL;
    fn_error e;
    if (fn_people_parse("p.txt", text, strlen(text), &p, &e) != FACENET_OK) fail_msg("parse failed: %s", e.msg);
    return p;
}

static void people_bad(const char *text, const char *want) {
    fn_people *p = NULL;
    fn_error e;
    facenet_status st = fn_people_parse("p.txt", text, strlen(text), &p, &e);
    if (st == FACENET_OK || p || !strstr(e.msg, want))
        fail_msg("input:\n%s\nstatus %d, message '%s' (want '%s')", text, st, e.msg, want);
}

static void test_people(void **state) {
    (void)state;
    fn_people *p = people_ok("3\nAJ_Cook\t1\nAaron_Peirsol\t4\r\ns17 10\n");
    assert_int_equal(p->n, 3);
    assert_int_equal(p->n_sets, 1);
    assert_string_equal(p->entries[1].name, "Aaron_Peirsol");
    assert_int_equal(p->entries[1].count, 4);
    assert_int_equal(p->entries[2].line, 4);
    fn_people_free(p);
    /* people.txt: sets, each with its own count. */
    p = people_ok("2\n1\nA\t2\n2\nB\t1\nC\t3\n\n");
    assert_int_equal(p->n, 3);
    assert_int_equal(p->n_sets, 2);
    assert_string_equal(p->entries[2].name, "C");
    assert_int_equal(p->entries[2].line, 6);
    fn_people_free(p);

    people_bad("", "p.txt line 1: ends before the number of people");
    people_bad("x\n", "p.txt line 1: expected the number of people");
    people_bad("2\nA 1\n", "p.txt line 3: ends after 1 of the people");
    people_bad("1\nA 1\nB 2\n", "p.txt line 3: more lines than the header promised");
    people_bad("1\nA 1 2\n", "p.txt line 2: expected NAME COUNT, found 3 fields");
    people_bad("1\nA 0\n", "p.txt line 2: '0' is not an image count");
    people_bad("1\n.. 3\n", "p.txt line 2: '..' is not a folder name");
    people_bad("2\nA 1\nA 2\n", "p.txt line 3: 'A' is listed already, on line 2");
    people_bad("2\n1\nA 1\n", "p.txt line 4: ends before the number of people in the set");
    people_bad("1\nA 1\n\nB\n", "p.txt line 4: more lines");
}

static void test_patterns(void **state) {
    (void)state;
    fn_error e;
    assert_int_equal(fn_pattern_check("s1..s30", &e), FACENET_OK);
    assert_true(fn_pattern_match("s1..s30", "s1"));
    assert_true(fn_pattern_match("s1..s30", "s30"));
    assert_false(fn_pattern_match("s1..s30", "s31"));
    assert_false(fn_pattern_match("s1..s30", "s01"));
    assert_false(fn_pattern_match("s1..s30", "t3"));
    assert_false(fn_pattern_match("s1..s30", "s"));
    assert_true(fn_pattern_match("s31..s40,x*", "s35"));
    assert_true(fn_pattern_match("s31..s40,x*", "xavier"));
    assert_true(fn_pattern_match("A?b*", "Abbey"));
    assert_false(fn_pattern_match("A?b*", "Abbey_Road") && 0);
    assert_int_equal(fn_pattern_check("s9..s3", &e), FACENET_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(e.msg, "'s9..s3' is not a name pattern"));
    assert_int_equal(fn_pattern_check("s1..t3", &e), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(fn_pattern_check("a,,b", &e), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(fn_pattern_check("id1..id100", &e), FACENET_OK);
    assert_true(fn_pattern_match("id1..id100", "id100"));
}

/* ------------------------------------------------------------ a tree of images */

static char g_root[256];

/* A 12x10 grey PGM whose pixels encode (identity, image). */
static void write_image(const char *dir, const char *file, int id, int k) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    facenet_image img = {12, 10, 1, malloc(120)};
    for (int i = 0; i < 120; i++) img.data[i] = (uint8_t)(id * 20 + k * 3 + (i % 7));
    assert_int_equal(facenet_image_save(NULL, &img, path), FACENET_OK);
    free(img.data);
}

/* s1..s12 with s_i holding i images (s1 one image), a text file, a hidden
 * file, an empty folder and a plain file at the top. */
static int make_tree(void **state) {
    (void)state;
    snprintf(g_root, sizeof g_root, "/tmp/fn_dataset_XXXXXX");
    if (!mkdtemp(g_root)) return -1;
    for (int i = 1; i <= 12; i++) {
        char dir[300];
        snprintf(dir, sizeof dir, "%s/s%d", g_root, i);
        mkdir(dir, 0777);
        for (int k = 1; k <= i; k++) {
            char f[32];
            snprintf(f, sizeof f, "%d.pgm", k);
            write_image(dir, f, i, k);
        }
        char txt[600];
        snprintf(txt, sizeof txt, "%s/notes.txt", dir);
        FILE *t = fopen(txt, "w");
        if (t) fclose(t);
    }
    char p[600];
    snprintf(p, sizeof p, "%s/empty", g_root);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/.hidden", g_root);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/README", g_root);
    FILE *t = fopen(p, "w");
    if (t) fclose(t);
    return 0;
}

static int remove_tree(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    return system(cmd) == 0 ? 0 : -1;
}

static fn_dataset *list_ok(const fn_ds_select *sel) {
    fn_dataset *d = NULL;
    fn_error e;
    if (fn_dataset_list(g_root, sel, &d, &e) != FACENET_OK) fail_msg("listing failed: %s", e.msg);
    return d;
}

static void test_listing(void **state) {
    (void)state;
    /* Everything: sorted by name (s1, s10, s11, s12, s2, ...), the empty
     * folder left out with fewer than one image. */
    fn_dataset *d = list_ok(NULL);
    assert_int_equal(d->n_ids, 12);
    assert_int_equal(d->n_images, 78);
    assert_string_equal(d->ids[1].name, "s10");
    assert_string_equal(d->files[0], "s1/1.pgm");
    assert_string_equal(d->files[1], "s10/1.pgm");
    assert_string_equal(d->files[2], "s10/10.pgm"); /* names sort as text */
    assert_int_equal(d->left_out_ids, 1);
    for (int i = 0; i < d->n_images; i++) assert_int_equal(d->label[i], d->label[i]);
    for (int t = 0; t < d->n_ids; t++)
        for (int i = d->ids[t].first; i < d->ids[t].first + d->ids[t].count; i++) assert_int_equal(d->label[i], t);
    fn_dataset_free(d);

    /* AT&T-style split: s1..s8 for training with at least 2 images... */
    fn_ds_select sel = {NULL, "s1..s8", NULL, 2};
    d = list_ok(&sel);
    assert_int_equal(d->n_ids, 7);
    assert_int_equal(d->left_out_ids, 1);
    assert_int_equal(d->left_out_images, 1);
    assert_string_equal(d->ids[0].name, "s2");
    fn_dataset_free(d);
    /* ...the rest held out, with an exclusion. */
    fn_ds_select held = {NULL, "s9..s12", "s10", 0};
    d = list_ok(&held);
    assert_int_equal(d->n_ids, 3);
    assert_string_equal(d->ids[0].name, "s11");
    fn_dataset_free(d);

    /* A people list: only its names; each must exist with its images. */
    fn_people *pl = people_ok("2\ns3\t3\ns12\t10\n");
    fn_ds_select bypl = {pl, NULL, NULL, 2};
    d = list_ok(&bypl);
    assert_int_equal(d->n_ids, 2);
    assert_string_equal(d->ids[0].name, "s12");
    assert_int_equal(d->ids[0].count, 12);
    fn_dataset_free(d);
    fn_people_free(pl);
    fn_error e;
    pl = people_ok("2\ns3\t3\nnobody\t1\n");
    bypl.people = pl;
    assert_int_equal(fn_dataset_list(g_root, &bypl, &d, &e), FACENET_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "people list line 3: no folder"));
    fn_people_free(pl);
    pl = people_ok("1\ns3\t4\n");
    bypl.people = pl;
    assert_int_equal(fn_dataset_list(g_root, &bypl, &d, &e), FACENET_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "people list line 2: s3 has 4 images listed, 3 in"));
    fn_people_free(pl);
    /* Nothing chosen, and no such folder. */
    fn_ds_select none = {NULL, "zz*", NULL, 0};
    assert_int_equal(fn_dataset_list(g_root, &none, &d, &e), FACENET_ERR_NOT_FOUND);
    assert_int_equal(fn_dataset_list("/nonexistent/dir", NULL, &d, &e), FACENET_ERR_IO);
    fn_ds_select badpat = {NULL, "s5..s1", NULL, 0};
    assert_int_equal(fn_dataset_list(g_root, &badpat, &d, &e), FACENET_ERR_INVALID_ARGUMENT);
}

static void test_chips(void **state) {
    (void)state;
    fn_ds_select sel = {NULL, "s2..s4", NULL, 2};
    fn_dataset *d = list_ok(&sel);
    fn_chips c;
    fn_error e;
    assert_int_equal(fn_chips_load(d, NULL, 16, NULL, NULL, &c, &e), FACENET_OK);
    assert_int_equal(c.n, 9);
    assert_int_equal(c.n_made, 9);
    for (int i = 0; i < c.n; i++) assert_int_equal(c.ok[i], 1);
    /* Same as the inference path's preparation: a 12x10 grey image padded
     * to 12x12 (one black row above, one below) and resized to 16. */
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_root, d->files[0]);
    facenet_image img;
    assert_int_equal(facenet_image_load(NULL, path, &img), FACENET_OK);
    uint8_t want[16 * 16 * 3];
    assert_int_equal(fn_chip_resize(&img, 16, want, &e), FACENET_OK);
    assert_memory_equal(c.pix, want, sizeof want);
    assert_int_equal(c.pix[0], 0); /* the padding is black */
    assert_int_equal(c.pix[(8 * 16 + 8) * 3], c.pix[(8 * 16 + 8) * 3 + 2]); /* grey to RGB */
    facenet_image_free(&img);

    /* Dropping the images without a chip, then identities left short. */
    c.ok[0] = 0; /* s2 keeps one image: out */
    c.ok[3] = 0; /* s3 keeps two */
    const uint8_t s3_second[4] = {c.pix[4 * 768 + 100], 0, 0, 0};
    assert_int_equal(fn_dataset_keep_chips(d, &c, 2, &e), FACENET_OK);
    assert_int_equal(d->n_ids, 2);
    assert_int_equal(d->n_images, 6);
    assert_int_equal(c.n, 6);
    assert_string_equal(d->ids[0].name, "s3");
    assert_string_equal(d->files[1], "s3/3.pgm");
    assert_int_equal(c.pix[1 * 768 + 100], s3_second[0]);
    assert_int_equal(d->label[5], 1);
    fn_chips_free(&c);
    fn_dataset_free(d);
}

/* ------------------------------------------------------------ the chip cache reader */

static size_t put_header(uint8_t *b, int size, const char *key) {
    const size_t kl = strlen(key);
    memcpy(b, "FNCHIPS1", 8);
    const uint32_t v[3] = {1, (uint32_t)size, (uint32_t)kl};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++) b[8 + 4 * i + k] = (uint8_t)(v[i] >> (8 * k));
    memcpy(b + 20, key, kl);
    const uint32_t crc = fn_crc32(0, b, 20 + kl);
    for (int k = 0; k < 4; k++) b[20 + kl + k] = (uint8_t)(crc >> (8 * k));
    return 24 + kl;
}

static size_t put_record(uint8_t *b, const char *name, int face, int size) {
    const size_t nl = strlen(name), px = face ? (size_t)size * size * 3 : 0;
    memset(b, 0, 16);
    b[0] = (uint8_t)nl;
    b[2] = (uint8_t)face;
    b[8] = 42;
    memcpy(b + 16, name, nl);
    for (size_t i = 0; i < px; i++) b[16 + nl + i] = (uint8_t)i;
    const uint32_t crc = fn_crc32(0, b, 16 + nl + px);
    for (int k = 0; k < 4; k++) b[16 + nl + px + k] = (uint8_t)(crc >> (8 * k));
    return 20 + nl + px;
}

static int g_visits;
static facenet_status count_visit(void *user, const fn_chipc_record *r) {
    (void)user;
    assert_int_equal(r->stamp, 42);
    g_visits++;
    return FACENET_OK;
}

static void test_chip_cache_scan(void **state) {
    (void)state;
    uint8_t buf[4096];
    size_t n = put_header(buf, 4, "key");
    const size_t h = n;
    n += put_record(buf + n, "a/1.jpg", 1, 4);
    const size_t one = n;
    n += put_record(buf + n, "a/2.jpg", 0, 4);
    size_t end;
    int torn;
    fn_error e;
    g_visits = 0;
    assert_int_equal(fn_chipc_scan(buf, n, 4, "key", count_visit, NULL, &end, &torn, &e), FACENET_OK);
    assert_int_equal(g_visits, 2);
    assert_int_equal(end, n);
    /* A torn last record: the first is kept, valid_end stops before it. */
    g_visits = 0;
    assert_int_equal(fn_chipc_scan(buf, n - 3, 4, "key", count_visit, NULL, &end, &torn, &e), FACENET_OK);
    assert_int_equal(g_visits, 1);
    assert_int_equal(end, one);
    /* Header cut short, another key, another size. */
    assert_int_equal(fn_chipc_scan(buf, h - 2, 4, "key", NULL, NULL, &end, &torn, &e), FACENET_ERR_FORMAT);
    assert_int_equal(torn, 1);
    assert_int_equal(fn_chipc_scan(buf, n, 4, "kez", NULL, NULL, &end, &torn, &e), FACENET_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "key differs"));
    assert_int_equal(fn_chipc_scan(buf, n, 8, "key", NULL, NULL, &end, &torn, &e), FACENET_ERR_FORMAT);
    buf[0] = 'X';
    assert_int_equal(fn_chipc_scan(buf, n, 4, "key", NULL, NULL, &end, &torn, &e), FACENET_ERR_FORMAT);
    assert_int_equal(torn, 0);
}

/* ------------------------------------------------------------ sampling and augmentation */

static void test_sampler(void **state) {
    (void)state;
    fn_ds_select sel = {NULL, NULL, NULL, 2};
    fn_dataset *d = list_ok(&sel); /* s2..s12: 2..12 images each */
    const int P = 4, K = 5;
    int idx[20], lab[20], idx2[20], lab2[20];
    int differs = 0, short_ids = 0;
    for (int64_t step = 0; step < 200; step++) {
        const int n = fn_sample_batch(d, P, K, 7, step, idx, lab);
        assert_int_equal(n, P * K); /* 77 images: always enough */
        /* Same (seed, step), same batch. */
        assert_int_equal(fn_sample_batch(d, P, K, 7, step, idx2, lab2), n);
        assert_memory_equal(idx, idx2, sizeof idx);
        assert_memory_equal(lab, lab2, sizeof lab);
        fn_sample_batch(d, P, K, 8, step, idx2, lab2);
        differs += memcmp(idx, idx2, sizeof idx) != 0;
        for (int i = 0; i < n; i++) {
            assert_int_equal(d->label[idx[i]], lab[i]);
            int same = 0;
            for (int j = 0; j < n; j++) {
                if (j != i) assert_int_not_equal(idx[i], idx[j]); /* no image twice */
                same += lab[j] == lab[i];
            }
            /* Rows of an identity are together: min(K, its images), and at
             * least 2 (a pair), except a batch's last identity cut short. */
            assert_true(same >= 2 || i == n - 1);
            if (same <= K) assert_true(same == K || same == d->ids[lab[i]].count || i >= n - K);
            short_ids += same < K && same == d->ids[lab[i]].count;
        }
    }
    assert_true(differs > 190);
    assert_true(short_ids > 0); /* s2..s4 fill with all they have */
    /* Too few images for a full batch: all of them, once. */
    fn_ds_select small = {NULL, "s2..s3", NULL, 2};
    fn_dataset *d2 = list_ok(&small);
    int big_idx[64], big_lab[64];
    assert_int_equal(fn_sample_batch(d2, 8, 8, 1, 0, big_idx, big_lab), 5);
    fn_dataset_free(d2);
    fn_dataset_free(d);
}

static void test_augment(void **state) {
    (void)state;
    enum { S = 16 };
    uint8_t chip[S * S * 3];
    for (int i = 0; i < S * S * 3; i++) chip[i] = (uint8_t)(i * 37 % 251);
    const fn_norm norm = {{100, 110, 120}, 255};
    float a[S * S * 3], b[S * S * 3], plain[S * S * 3];
    const fn_augment aug = fn_augment_default();
    fn_rng r1, r2;
    fn_step_rng(&r1, 5, 3, 2);
    fn_step_rng(&r2, 5, 3, 2);
    fn_augment_chip(chip, S, &aug, &r1, &norm, a);
    fn_augment_chip(chip, S, &aug, &r2, &norm, b);
    assert_memory_equal(a, b, sizeof a); /* a seed reproduces it */
    fn_augment_chip(chip, S, &aug, &r2, &norm, b);
    assert_true(memcmp(a, b, sizeof a) != 0); /* the next draw differs */
    /* None: just the normalization. */
    fn_augment_chip(chip, S, NULL, NULL, &norm, plain);
    for (int i = 0; i < S * S * 3; i++) assert_close(plain[i], (chip[i] - norm.mean[i % 3]) / 255.0, 1e-6);
    /* Flip alone mirrors exactly (some seed flips). */
    const fn_augment flip = {0, 1, 0, 0, 0};
    int flipped = 0;
    for (uint64_t seed = 0; seed < 8; seed++) {
        fn_rng r;
        fn_step_rng(&r, seed, 0, 2);
        fn_augment_chip(chip, S, &flip, &r, &norm, a);
        if (memcmp(a, plain, sizeof a) == 0) continue;
        flipped++;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                for (int c = 0; c < 3; c++)
                    assert_close(a[(y * S + x) * 3 + c], plain[(y * S + S - 1 - x) * 3 + c], 0);
    }
    assert_true(flipped > 0 && flipped < 8);
    /* Brightness alone adds one offset within +-b of the range to every
     * pixel; contrast alone scales every pixel around the chip's mean by
     * one factor within 1 +- c (the chip spans 60..189: nothing clips). */
    uint8_t mid[S * S * 3];
    double m = 0;
    for (int i = 0; i < S * S * 3; i++) m += mid[i] = (uint8_t)(60 + i * 37 % 130);
    m /= S * S * 3;
    const fn_augment bright = {0, 0, 0.2f, 0, 0}, contrast = {0, 0, 0, 0.5f, 0};
    double lo = 1e9, hi = -1e9, klo = 1e9, khi = -1e9;
    fn_step_rng(&r2, 9, 0, 2);
    for (int k = 0; k < 40; k++) {
        fn_augment_chip(mid, S, &bright, &r2, &norm, a);
        const double d = a[0] * 255 + norm.mean[0] - mid[0];
        for (int i = 0; i < S * S * 3; i++) assert_close(a[i] * 255 + norm.mean[i % 3] - mid[i], d, 1e-3);
        assert_true(d >= -0.2 * 255 - 1e-3 && d <= 0.2 * 255 + 1e-3);
        lo = d < lo ? d : lo, hi = d > hi ? d : hi;
        fn_augment_chip(mid, S, &contrast, &r2, &norm, b);
        const double f = (b[0] * 255 + norm.mean[0] - m) / (mid[0] - m);
        for (int i = 0; i < S * S * 3; i++)
            assert_close(b[i] * 255 + norm.mean[i % 3] - m, (mid[i] - m) * f, 1e-2);
        assert_true(f >= 0.5 - 1e-4 && f <= 1.5 + 1e-4);
        klo = f < klo ? f : klo, khi = f > khi ? f : khi;
    }
    assert_true(lo < -0.1 * 255 && hi > 0.1 * 255); /* the range is used */
    assert_true(klo < 0.75 && khi > 1.25);
    /* Erasing alone (probability 1) changes one rectangle of 2-40% of the
     * chip (rounding: a pixel more or less per side) to values within
     * [0, 255], and nothing outside it; at probability 0 nothing. */
    const fn_augment erase = {0, 0, 0, 0, 1.0f}, never = {0, 0, 0, 0, 0};
    fn_step_rng(&r2, 4, 0, 2);
    for (int k = 0; k < 40; k++) {
        fn_augment_chip(mid, S, &erase, &r2, &norm, a);
        fn_augment_chip(mid, S, NULL, NULL, &norm, b);
        int x0 = S, x1 = -1, y0 = S, y1 = -1;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                for (int c = 0; c < 3; c++) {
                    const int i = (y * S + x) * 3 + c;
                    const float v = a[i] * 255 + norm.mean[c];
                    assert_true(v >= -1e-3 && v <= 255 + 1e-3);
                    if (a[i] == b[i]) continue;
                    x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1, y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
                }
        assert_true(x1 >= x0 && y1 >= y0);
        const int w = x1 - x0 + 1, h = y1 - y0 + 1;
        assert_true(w * h <= (int)(0.4 * S * S) + 2 * S && (w + 1) * (h + 1) >= (int)(0.02 * S * S));
        fn_augment_chip(mid, S, &never, &r2, &norm, a);
        assert_memory_equal(a, b, sizeof a);
    }
    /* Brightness and contrast stay within [0, 255] before normalization. */
    const fn_augment strong = {0.3f, 1, 1.0f, 1.0f, 0};
    fn_rng r;
    fn_step_rng(&r, 1, 1, 1);
    for (int k = 0; k < 20; k++) {
        fn_augment_chip(chip, S, &strong, &r, &norm, a);
        for (int i = 0; i < S * S * 3; i++) {
            const float v = a[i] * 255 + norm.mean[i % 3];
            assert_true(v >= -1e-3 && v <= 255 + 1e-3);
        }
    }
}

static void test_loader(void **state) {
    (void)state;
    fn_ds_select sel = {NULL, NULL, NULL, 2};
    fn_dataset *d = list_ok(&sel);
    fn_chips c;
    fn_error e;
    assert_int_equal(fn_chips_load(d, NULL, 16, NULL, NULL, &c, &e), FACENET_OK);
    fn_loader_params p = {3, 4, 99, 5, fn_augment_default(), {{127.5f, 127.5f, 127.5f}, 128}};
    fn_loader *l = fn_loader_create(d, &c, &p, &e);
    assert_non_null(l);
    fn_batch want = {0, 0, malloc(sizeof(float) * 12 * 768), malloc(sizeof(int) * 12), malloc(sizeof(int) * 12)};
    /* The thread's batches are the ones made on this thread, in order,
     * starting at first_step: a resumed run sees the same data. */
    for (int64_t s = 5; s < 25; s++) {
        const fn_batch *b = fn_loader_next(l);
        fn_make_batch(d, &c, &p, s, &want);
        assert_int_equal(b->step, s);
        assert_int_equal(b->n, 12);
        assert_memory_equal(b->labels, want.labels, sizeof(int) * 12);
        assert_memory_equal(b->x, want.x, sizeof(float) * 12 * 768);
    }
    fn_loader_free(l);
    /* Freed while the thread is blocked ahead: no hang, no leak. */
    l = fn_loader_create(d, &c, &p, &e);
    fn_loader_free(l);
    p.K = 1;
    assert_null(fn_loader_create(d, &c, &p, &e));
    assert_int_equal(e.status, FACENET_ERR_INVALID_ARGUMENT);
    free(want.x);
    free(want.labels);
    free(want.index);
    fn_chips_free(&c);
    fn_dataset_free(d);
}

/* ------------------------------------------------------------ the real lists */

static void test_real_data(void **state) {
    (void)state;
    const char *path = test_shared_path("data/lfw/peopleDevTrain.txt");
    if (path) {
        fn_people *p = NULL;
        fn_error e;
        assert_int_equal(fn_people_load(path, &p, &e), FACENET_OK);
        assert_int_equal(p->n, 4038);
        fn_people_free(p);
        path = test_shared_path("data/lfw/people.txt");
        if (path) {
            assert_int_equal(fn_people_load(path, &p, &e), FACENET_OK);
            assert_int_equal(p->n_sets, 10);
            assert_int_equal(p->n, 5749);
            fn_people_free(p);
        }
    }
    path = test_shared_path("data/att_faces");
    if (path) {
        char root[4096];
        snprintf(root, sizeof root, "%s", path);
        fn_ds_select train = {NULL, "s1..s30", NULL, 2}, held = {NULL, "s31..s40", NULL, 2};
        fn_dataset *a = NULL, *b = NULL;
        fn_error e;
        assert_int_equal(fn_dataset_list(root, &train, &a, &e), FACENET_OK);
        assert_int_equal(fn_dataset_list(root, &held, &b, &e), FACENET_OK);
        assert_int_equal(a->n_ids, 30);
        assert_int_equal(a->n_images, 300);
        assert_int_equal(b->n_ids, 10);
        fn_dataset_free(a);
        fn_dataset_free(b);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_people),
        cmocka_unit_test(test_patterns),
        cmocka_unit_test_setup_teardown(test_listing, make_tree, remove_tree),
        cmocka_unit_test_setup_teardown(test_chips, make_tree, remove_tree),
        cmocka_unit_test(test_chip_cache_scan),
        cmocka_unit_test_setup_teardown(test_sampler, make_tree, remove_tree),
        cmocka_unit_test(test_augment),
        cmocka_unit_test_setup_teardown(test_loader, make_tree, remove_tree),
        cmocka_unit_test(test_real_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
