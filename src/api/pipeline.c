/*
 * pipeline.c - FaceNet's pipeline on a photo: detect, landmarks, align,
 * embed. Each stage runs in the pipeline's own scratch arena, which is reset
 * between stages; the chips of all faces are embedded in one batch.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "align/align.h"
#include "image/image.h"
#include "api/api.h"
#include "detect/detect.h"
#include "landmarks/landmarks.h"
#include "nets/preprocess.h"

#define MAX_FACES 1000
/* Chips held at once when faces are jittered. */
#define JITTER_CHIPS 64

struct facenet_pipeline {
    facenet_ctx *ctx;
    const facenet_model *det, *lmk, *emb;
    facenet_pipeline_params p;
    fn_arena arena;
    fn_exec ex;
    facenet_timings t;
};

facenet_pipeline_params facenet_pipeline_default_params(void) {
    facenet_pipeline_params p;
    memset(&p, 0, sizeof p);
    p.min_score = 0.5f;
    p.max_faces = 100;
    p.iou = 0.0f;
    p.tiny_input_size = 416;
    p.align = FACENET_ALIGN_SIMILARITY;
    p.embed = 1;
    p.embed_flags = FACENET_EMBED_FLIP;
    p.align_padding = (float)FN_ALIGN_PADDING;
    p.closeup = FACENET_CLOSEUP_IF_NONE;
    p.jitters = 1;
    return p;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static facenet_status check_model(const facenet_model *m, fn_arch_kind kind, const char *role, fn_error *e) {
    if (!m) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "the pipeline needs a %s model", role);
    if (m->arch->kind != kind)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "%s is a %s model, not a %s model", m->path,
                       m->arch->kind_name, role);
    return FACENET_OK;
}

facenet_status facenet_pipeline_create(facenet_ctx *ctx, const facenet_model *detector,
                                       const facenet_model *landmarks, const facenet_model *embedder,
                                       const facenet_pipeline_params *params, facenet_pipeline **out) {
    fn_error e;
    fn_error_clear(&e);
    facenet_pipeline_params p = params ? *params : facenet_pipeline_default_params();
    if (!ctx || !out) return FACENET_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (check_model(detector, FN_ARCH_DETECTOR, "detector", &e) ||
        check_model(landmarks, FN_ARCH_LANDMARKS, "landmarks", &e) ||
        (p.embed && check_model(embedder, FN_ARCH_EMBEDDING, "embedding", &e)))
        return fn_ctx_report(ctx, &e);
    if (p.max_faces < 1 || p.max_faces > MAX_FACES || !(p.min_score >= 0.0f && p.min_score < 1.0f) ||
        !(p.iou >= 0.0f && p.iou <= 1.0f) || (p.align != FACENET_ALIGN_SIMILARITY && p.align != FACENET_ALIGN_FACEAPI) ||
        !(p.align_padding >= 0.0f && p.align_padding <= 1.0f) || p.closeup < FACENET_CLOSEUP_OFF ||
        p.closeup > FACENET_CLOSEUP_ALWAYS || p.jitters < 0 || p.jitters > FACENET_MAX_JITTERS) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT,
                "pipeline parameters out of range: max_faces 1..%d, min_score [0,1), iou [0,1], align 0 or 1, "
                "align_padding [0,1], closeup 0..2, jitters 0..%d",
                MAX_FACES, FACENET_MAX_JITTERS);
        return fn_ctx_report(ctx, &e);
    }
    if (p.jitters == 0) p.jitters = 1; /* the same: one chip */
    if (p.jitters > 1 && p.align != FACENET_ALIGN_SIMILARITY) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "jitters need the similarity alignment, not face-api's crop");
        return fn_ctx_report(ctx, &e);
    }
    if (p.tiny_input_size < 32 || p.tiny_input_size > 4096 || p.tiny_input_size % 32) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "tiny detector input size %d is not a multiple of 32 in 32..4096",
                p.tiny_input_size);
        return fn_ctx_report(ctx, &e);
    }
    facenet_pipeline *pl = calloc(1, sizeof *pl);
    if (!pl) {
        fn_fail(&e, FACENET_ERR_NO_MEMORY, "out of memory creating a pipeline");
        return fn_ctx_report(ctx, &e);
    }
    pl->ctx = ctx;
    pl->det = detector;
    pl->lmk = landmarks;
    pl->emb = p.embed ? embedder : NULL;
    pl->p = p;
    if (fn_exec_init(&pl->ex, fn_backend_default(), ctx->pool, &pl->arena) != 0)
        fn_log(ctx, FACENET_LOG_WARN, "the fast backend could not start; the pipeline uses the reference");
    if (fn_exec_precision(ctx, pl->emb, &pl->ex, &e) != FACENET_OK) {
        facenet_pipeline_free(pl);
        return fn_ctx_report(ctx, &e);
    }
    *out = pl;
    return fn_ctx_report(ctx, &e);
}

void facenet_pipeline_free(facenet_pipeline *p) {
    if (!p) return;
    fn_exec_release(&p->ex);
    fn_arena_free(&p->arena);
    free(p);
}

facenet_timings facenet_pipeline_timings(const facenet_pipeline *p) {
    facenet_timings t = {0, 0, 0, 0};
    return p ? p->t : t;
}

static facenet_status check_image(const facenet_image *img, fn_error *e) {
    if (!img || !img->data || img->width <= 0 || img->height <= 0 || (img->channels != 1 && img->channels != 3))
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "not an image: need 1 or 3 channels of 8-bit pixels");
    if (img->width > FACENET_MAX_IMAGE_SIDE || img->height > FACENET_MAX_IMAGE_SIDE ||
        (uint64_t)img->width * (uint64_t)img->height > FACENET_MAX_IMAGE_PIXELS)
        return fn_fail(e, FACENET_ERR_TOO_LARGE, "a %dx%d image is over the size limit (%u pixels, %d per side)",
                       img->width, img->height, FACENET_MAX_IMAGE_PIXELS, FACENET_MAX_IMAGE_SIDE);
    return FACENET_OK;
}

static fn_face_box box_of(const facenet_face *f) {
    fn_face_box b = {f->x, f->y, f->width, f->height, f->score};
    return b;
}

/* The chip the embedding network sees for a face; k > 0: its k-th jittered
 * copy (similarity alignment only). */
static facenet_status make_chip(const facenet_pipeline *p, const facenet_image *img, const facenet_face *face,
                                int k, facenet_image *chip, fn_error *e) {
    const float *pts = face->landmarks;
    if (p->p.align == FACENET_ALIGN_FACEAPI) {
        if (k > 0) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "jittered chips need the similarity alignment");
        /* face-api caps its square by the landmark crop the points came from. */
        int crop[4], r[4];
        fn_face_box b = box_of(face);
        if (fn_landmarks_crop(&b, img->width, img->height, crop) != 0)
            return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "the face's box lies outside the image");
        fn_align_faceapi_rect_crop(pts, crop[2], crop[3], img->width, img->height, r);
        facenet_status st = facenet_image_crop(NULL, img, r[0], r[1], r[2], r[3], chip);
        if (st != FACENET_OK)
            return fn_fail(e, st, "face-api crop %dx%d at (%d, %d) does not fit the image", r[2], r[3], r[0], r[1]);
        return FACENET_OK;
    }
    const int size = p->emb ? p->emb->input_size : 150;
    fn_affine a;
    if (fn_align_similarity_transform(pts, size, p->p.align_padding, &a) != 0)
        return fn_fail(e, FACENET_ERR_INTERNAL, "the face's landmarks are degenerate; cannot align it");
    if (k > 0) {
        fn_affine j;
        fn_align_jitter(size, k, &j);
        fn_affine_then(&a, &j, &a);
    }
    return fn_warp_affine(&p->ex, img, &a, size, chip, e);
}

/*
 * Faces of any orientation: the detector and landmark networks only see
 * upright faces, so with all_orientations the photo is also searched turned
 * by k quarter turns clockwise (k = 1, 2, 3). The detections of all turns
 * are mapped back to the photo and thinned by non-maximum suppression, best
 * score first, so each face comes from the turn where the detector was most
 * sure of it, and its landmarks are found in that turn.
 *
 * The detector also fires on faces lying on their side or upside down, with
 * scores close to the upright ones (on the demo photos turned by 90 degrees
 * it picks a wrong turn for 1 face in 22). Ranking whole turns by their total
 * score did worse (3 in 22), and the landmark network's output cannot tell
 * either: it draws an upright face into any crop.
 */
typedef struct found {
    fn_face_box box; /* in the turned image */
    int turn;        /* quarter turns clockwise, 0..3 */
} found;

/* Map a point of the image turned by `turn` quarter turns back to the photo
 * (w x h), in continuous pixel coordinates. */
static void unturn(int turn, int w, int h, float u, float v, float *x, float *y) {
    switch (turn & 3) {
    case 1: *x = v, *y = (float)h - u; break;
    case 2: *x = (float)w - u, *y = (float)h - v; break;
    case 3: *x = (float)w - v, *y = u; break;
    default: *x = u, *y = v; break;
    }
}

static fn_face_box unturn_box(int turn, int w, int h, const fn_face_box *b) {
    float x0, y0, x1, y1;
    unturn(turn, w, h, b->x, b->y, &x0, &y0);
    unturn(turn, w, h, b->x + b->w, b->y + b->h, &x1, &y1);
    fn_face_box r = {x0 < x1 ? x0 : x1, y0 < y1 ? y0 : y1, x0 < x1 ? x1 - x0 : x0 - x1,
                     y0 < y1 ? y1 - y0 : y0 - y1, b->score};
    return r;
}

/* A copy of img turned `turn` quarter turns clockwise (EXIF orientations 6, 3, 8). */
static facenet_status turned_copy(const facenet_image *img, int turn, facenet_image *out, fn_error *e) {
    static const int ORIENTATION[4] = {1, 6, 3, 8};
    facenet_status st = fn_image_alloc(img->width, img->height, img->channels, out, e);
    if (st != FACENET_OK) return st;
    memcpy(out->data, img->data, (size_t)img->width * img->height * img->channels);
    st = fn_image_orient(out, ORIENTATION[turn], e);
    if (st != FACENET_OK) facenet_image_free(out);
    return st;
}

/*
 * The close-up view: the photo shrunk by a whole factor k (box average) so
 * its longer side is at most CLOSEUP_SIDE, centred in a black square twice
 * that side. Black, as the detectors pad a photo to a square themselves. A
 * face that filled the photo then fills a quarter of the detector's view,
 * where SSD finds it. Boxes come back by (u - off) * k.
 */
#define CLOSEUP_SIDE 512

typedef struct closeup_view {
    facenet_image img;
    int k, off_x, off_y;
} closeup_view;

static facenet_status closeup_make(const facenet_image *img, closeup_view *v, fn_error *e) {
    const int longer = img->width > img->height ? img->width : img->height;
    const int k = (longer + CLOSEUP_SIDE - 1) / CLOSEUP_SIDE, c = img->channels;
    const int w = img->width / k, h = img->height / k;
    if (w < 1 || h < 1) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "the photo is too thin to search at a smaller scale");
    const int side = 2 * (w > h ? w : h);
    facenet_status st = fn_image_alloc(side, side, c, &v->img, e);
    if (st != FACENET_OK) return st;
    memset(v->img.data, 0, (size_t)side * side * c);
    v->k = k;
    v->off_x = (side - w) / 2;
    v->off_y = (side - h) / 2;
    for (int y = 0; y < h; y++) {
        uint8_t *d = v->img.data + ((size_t)(v->off_y + y) * side + v->off_x) * c;
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++) {
                unsigned sum = 0;
                for (int dy = 0; dy < k; dy++) {
                    const uint8_t *s = img->data + ((size_t)(y * k + dy) * img->width + (size_t)x * k) * c + ch;
                    for (int dx = 0; dx < k; dx++) sum += s[(size_t)dx * c];
                }
                d[(size_t)x * c + ch] = (uint8_t)((sum + (unsigned)(k * k) / 2) / (unsigned)(k * k));
            }
    }
    return FACENET_OK;
}

/* A box of the view in the photo's pixels, cut to the photo (w x h); 0 if
 * nothing of it is left (a detection in the margin). */
static int closeup_box(const closeup_view *v, const fn_face_box *b, int w, int h, fn_face_box *out) {
    float x0 = (b->x - (float)v->off_x) * (float)v->k, y0 = (b->y - (float)v->off_y) * (float)v->k;
    float x1 = x0 + b->w * (float)v->k, y1 = y0 + b->h * (float)v->k;
    x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > (float)w ? (float)w : x1, y1 = y1 > (float)h ? (float)h : y1;
    if (!(x1 - x0 >= 1.0f && y1 - y0 >= 1.0f)) return 0;
    fn_face_box r = {x0, y0, x1 - x0, y1 - y0, b->score};
    *out = r;
    return 1;
}

/* A box as the corners NMS takes: y0, x0, y1, x1. */
static void box_corners(const fn_face_box *b, float c[4]) {
    c[0] = b->y, c[1] = b->x, c[2] = b->y + b->h, c[3] = b->x + b->w;
}

static int by_score(const void *a, const void *b) {
    float x = ((const found *)a)->box.score, y = ((const found *)b)->box.score;
    return x > y ? -1 : x < y;
}

/* Detect in every orientation asked for; fills f (sorted by score, best
 * first, overlaps across turns suppressed) and *nf. */
static facenet_status detect_all(facenet_pipeline *p, const facenet_image *img, const facenet_image *turned,
                                 found *f, int *nf, fn_error *e) {
    fn_detect_opts o = fn_detect_default_opts(p->det);
    o.min_score = p->p.min_score;
    o.max_results = p->p.max_faces;
    if (p->p.iou > 0.0f) o.iou = p->p.iou;
    o.input_size = p->p.tiny_input_size;
    const int turns = p->p.all_orientations ? 4 : 1;
    fn_face_box boxes[MAX_FACES];
    int total = 0;
    for (int t = 0; t < turns; t++) {
        int nb = 0;
        fn_arena_reset(&p->arena);
        facenet_status st = fn_detect(p->det, &p->ex, t ? &turned[t] : img, &o, boxes, p->p.max_faces, &nb, e);
        if (st != FACENET_OK) return st;
        for (int i = 0; i < nb && total < MAX_FACES; i++) {
            f[total].box = boxes[i];
            f[total].turn = t;
            total++;
        }
    }
    /* The close-up pass only adds faces the plain passes did not find: its
     * boxes come from a smaller view and are less precise where both see a
     * face. */
    if (p->p.closeup == FACENET_CLOSEUP_ALWAYS || (p->p.closeup == FACENET_CLOSEUP_IF_NONE && total == 0)) {
        closeup_view v;
        memset(&v, 0, sizeof v);
        int nb = 0;
        const int plain = total;
        facenet_status st = closeup_make(img, &v, e);
        fn_arena_reset(&p->arena);
        if (st == FACENET_OK) st = fn_detect(p->det, &p->ex, &v.img, &o, boxes, p->p.max_faces, &nb, e);
        for (int i = 0; st == FACENET_OK && i < nb && total < MAX_FACES; i++) {
            fn_face_box b;
            if (!closeup_box(&v, &boxes[i], img->width, img->height, &b)) continue;
            float cb[4], cq[4];
            box_corners(&b, cb);
            int seen = 0;
            for (int j = 0; j < plain && !seen; j++) {
                fn_face_box q = unturn_box(f[j].turn, img->width, img->height, &f[j].box);
                box_corners(&q, cq);
                seen = fn_box_iou(cb, cq) > o.iou;
            }
            if (seen) continue;
            f[total].box = b;
            f[total].turn = 0;
            total++;
        }
        facenet_image_free(&v.img);
        if (st != FACENET_OK) return st;
        if (total > plain && turns == 1) qsort(f, (size_t)total, sizeof *f, by_score);
    }
    if (turns > 1 && total > 0) {
        qsort(f, (size_t)total, sizeof *f, by_score);
        float *corners = malloc(sizeof(float) * 4 * (size_t)total);
        int *keep = malloc(sizeof(int) * (size_t)total);
        found *kept = malloc(sizeof(found) * (size_t)total);
        if (!corners || !keep || !kept) {
            free(corners);
            free(keep);
            free(kept);
            return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory merging detections");
        }
        for (int i = 0; i < total; i++) {
            fn_face_box b = unturn_box(f[i].turn, img->width, img->height, &f[i].box);
            box_corners(&b, corners + 4 * i);
        }
        int k = fn_nms_keep(corners, total, o.iou, p->p.max_faces, keep);
        for (int i = 0; i < k; i++) kept[i] = f[keep[i]];
        memcpy(f, kept, sizeof(found) * (size_t)k);
        total = k;
        free(corners);
        free(keep);
        free(kept);
    }
    *nf = total < p->p.max_faces ? total : p->p.max_faces;
    return FACENET_OK;
}

/* The mean of v's nj rows from row first * nj, into out. */
static void mean_rows(const float *v, int first, int nj, int dim, float *out) {
    for (int k = 0; k < dim; k++) {
        double s = 0;
        for (int j = 0; j < nj; j++) s += v[((size_t)first * nj + j) * dim + k];
        out[k] = (float)(s / nj);
    }
}

/*
 * Jitter: the network's raw outputs are averaged over each face's nj chips
 * (and, with the mirror image, over their mirrors apart), then normalized
 * and merged as for one chip. So a face's vector is what an evaluation
 * that keeps the raw vectors of chip and mirror computes (facenet eval).
 * chips: nb * nj, face by face; out: nb rows.
 */
static facenet_status embed_jittered(facenet_pipeline *p, const facenet_image *chips, int nb, int nj, float *out,
                                     fn_error *e) {
    const int dim = p->emb->embedding_dim, flip = (p->p.embed_flags & FACENET_EMBED_FLIP) != 0;
    const int raw = (p->p.embed_flags & FACENET_EMBED_RAW) != 0;
    const size_t nc = (size_t)nb * nj;
    float *v = malloc(sizeof(float) * nc * dim * (flip ? 2 : 1));
    float *m = malloc(sizeof(float) * (size_t)nb * dim * 2);
    facenet_image *mirrors = flip ? calloc(nc, sizeof *mirrors) : NULL;
    facenet_status st = FACENET_OK;
    if (!v || !m || (flip && !mirrors)) st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for %d chips", (int)nc);
    for (size_t c = 0; flip && c < nc && st == FACENET_OK; c++) st = fn_image_mirror(&chips[c], &mirrors[c], e);
    if (st == FACENET_OK) st = fn_embed_batch(p->emb, &p->ex, chips, (int)nc, v, FACENET_EMBED_RAW, e);
    if (st == FACENET_OK && flip)
        st = fn_embed_batch(p->emb, &p->ex, mirrors, (int)nc, v + nc * dim, FACENET_EMBED_RAW, e);
    for (int i = 0; i < nb && st == FACENET_OK; i++) {
        /* m: row i the chips' mean, row nb + i the mirrors'. */
        mean_rows(v, i, nj, dim, m + (size_t)i * dim);
        if (flip) mean_rows(v + nc * dim, i, nj, dim, m + (size_t)(nb + i) * dim);
    }
    if (st == FACENET_OK) {
        if (!raw) fn_l2_normalize(m, flip ? 2 * nb : nb, dim, 1e-12f);
        if (flip)
            fn_mirror_merge(m, nb, dim, raw, out);
        else
            memcpy(out, m, sizeof(float) * (size_t)nb * dim);
    }
    for (size_t c = 0; mirrors && c < nc; c++) facenet_image_free(&mirrors[c]);
    free(mirrors);
    free(v);
    free(m);
    return st;
}

/* Landmarks, chips and embeddings of the nb faces found. */
static facenet_status describe(facenet_pipeline *p, const facenet_image *img, const facenet_image *turned,
                               const found *boxes, int nb, facenet_face *faces, int *n, fn_error *e) {
    facenet_status st = FACENET_OK;
    double t1 = now_ms();
    for (int i = 0; i < nb; i++) {
        facenet_face *f = &faces[i];
        fn_face_box b = unturn_box(boxes[i].turn, img->width, img->height, &boxes[i].box);
        memset(f, 0, sizeof *f);
        f->x = b.x;
        f->y = b.y;
        f->width = b.w;
        f->height = b.h;
        f->score = b.score;
    }
    /* The landmark network takes a batch of faces at a time. */
    for (int first = 0; first < nb; first += FN_LANDMARKS_BATCH) {
        const int k = nb - first < FN_LANDMARKS_BATCH ? nb - first : FN_LANDMARKS_BATCH;
        const facenet_image *seen[FN_LANDMARKS_BATCH];
        fn_face_box bx[FN_LANDMARKS_BATCH];
        float pts[FN_LANDMARKS_BATCH][2 * FN_LANDMARKS];
        for (int j = 0; j < k; j++) {
            seen[j] = boxes[first + j].turn ? &turned[boxes[first + j].turn] : img;
            bx[j] = boxes[first + j].box;
        }
        fn_arena_reset(&p->arena);
        /* face-api's own landmarks for parity; otherwise ones that follow a
         * rolled face, for the similarity alignment. */
        if (p->p.align == FACENET_ALIGN_FACEAPI)
            st = fn_landmarks_many(p->lmk, &p->ex, seen, bx, k, FN_ORIGIN_FACEAPI, pts[0], e);
        else
            st = fn_landmarks_upright_many(p->lmk, &p->ex, seen, bx, k, pts[0], e);
        if (st != FACENET_OK) return st;
        for (int j = 0; j < k; j++) {
            facenet_face *f = &faces[first + j];
            const int turn = boxes[first + j].turn;
            memcpy(f->landmarks, pts[j], sizeof pts[j]);
            for (int q = 0; turn && q < FACENET_LANDMARKS; q++)
                unturn(turn, img->width, img->height, f->landmarks[2 * q], f->landmarks[2 * q + 1],
                       &f->landmarks[2 * q], &f->landmarks[2 * q + 1]);
        }
    }
    double t2 = now_ms();
    p->t.landmarks_ms = t2 - t1;
    *n = nb;
    if (!p->emb || nb == 0) return FACENET_OK;

    /* Face i's chips are chips[i * nj .. i * nj + nj - 1], jitters after
     * the aligned chip. With jitters the faces go a group at a time, so
     * that a photo of many faces does not hold all their chips at once. */
    const int nj = p->p.jitters, dim = p->emb->embedding_dim;
    const int group = nj == 1 ? nb : (JITTER_CHIPS / nj > 1 ? JITTER_CHIPS / nj : 1);
    const size_t cap = (size_t)(group < nb ? group : nb) * nj;
    facenet_image *chips = calloc(cap, sizeof *chips);
    float *emb = malloc(sizeof(float) * (size_t)nb * dim);
    if (!chips || !emb) {
        free(chips);
        free(emb);
        return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for %d face chips", (int)cap);
    }
    p->t.align_ms = p->t.embed_ms = 0;
    for (int first = 0; first < nb && st == FACENET_OK; first += group) {
        const int k = nb - first < group ? nb - first : group;
        const size_t nc = (size_t)k * nj;
        double t3 = now_ms();
        for (size_t c = 0; c < nc && st == FACENET_OK; c++)
            st = make_chip(p, img, &faces[first + c / nj], (int)(c % nj), &chips[c], e);
        double t4 = now_ms();
        float *out = emb + (size_t)first * dim;
        if (st == FACENET_OK)
            st = nj == 1 ? fn_embed_batch(p->emb, &p->ex, chips, k, out, p->p.embed_flags, e)
                         : embed_jittered(p, chips, k, nj, out, e);
        p->t.align_ms += t4 - t3;
        p->t.embed_ms += now_ms() - t4;
        for (size_t c = 0; c < nc; c++) facenet_image_free(&chips[c]);
    }
    for (int i = 0; i < nb && st == FACENET_OK; i++) {
        memcpy(faces[i].embedding, emb + (size_t)i * dim, sizeof(float) * (size_t)dim);
        faces[i].has_embedding = 1;
    }
    free(chips);
    free(emb);
    return st;
}

static facenet_status run(facenet_pipeline *p, const facenet_image *img, facenet_face *faces, int cap, int *n,
                          fn_error *e) {
    facenet_timings t = {0, 0, 0, 0};
    p->t = t;
    if (check_image(img, e) != FACENET_OK) return e->status;
    facenet_image turned[4];
    memset(turned, 0, sizeof turned);
    found boxes[MAX_FACES];
    int nb = 0;
    facenet_status st = FACENET_OK;
    double t0 = now_ms();
    for (int k = 1; p->p.all_orientations && k < 4 && st == FACENET_OK; k++)
        st = turned_copy(img, k, &turned[k], e);
    if (st == FACENET_OK) st = detect_all(p, img, turned, boxes, &nb, e);
    double t1 = now_ms();
    p->t.detect_ms = t1 - t0;
    if (st == FACENET_OK) st = describe(p, img, turned, boxes, nb < cap ? nb : cap, faces, n, e);
    for (int k = 1; k < 4; k++) facenet_image_free(&turned[k]);
    return st;
}
facenet_status facenet_pipeline_run(facenet_pipeline *p, const facenet_image *img, facenet_face *faces, int cap,
                                    int *n) {
    if (!p) return FACENET_ERR_INVALID_ARGUMENT;
    fn_error e;
    fn_error_clear(&e);
    if (!n || cap < 0 || (cap > 0 && !faces)) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "facenet_pipeline_run: bad arguments");
        return fn_ctx_report(p->ctx, &e);
    }
    *n = 0;
    run(p, img, faces, cap, n, &e);
    fn_arena_reset(&p->arena);
    return fn_ctx_report(p->ctx, &e);
}

facenet_status facenet_pipeline_chip(facenet_pipeline *p, const facenet_image *img, const facenet_face *face,
                                     facenet_image *chip) {
    if (!p) return FACENET_ERR_INVALID_ARGUMENT;
    fn_error e;
    fn_error_clear(&e);
    if (!face || !chip)
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "facenet_pipeline_chip: bad arguments");
    else if (check_image(img, &e) == FACENET_OK)
        make_chip(p, img, face, 0, chip, &e);
    return fn_ctx_report(p->ctx, &e);
}

facenet_status facenet_pipeline_jitter_chip(facenet_pipeline *p, const facenet_image *img, const facenet_face *face,
                                            int k, facenet_image *chip) {
    if (!p) return FACENET_ERR_INVALID_ARGUMENT;
    fn_error e;
    fn_error_clear(&e);
    if (!face || !chip || k < 0 || k >= FACENET_MAX_JITTERS)
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "facenet_pipeline_jitter_chip: bad arguments (k = %d)", k);
    else if (check_image(img, &e) == FACENET_OK)
        make_chip(p, img, face, k, chip, &e);
    return fn_ctx_report(p->ctx, &e);
}
