/*
 * pipeline.c - FaceNet's pipeline on a photo: detect, landmarks, align,
 * embed. Each stage runs in the pipeline's own scratch arena, which is reset
 * between stages; the chips of all faces are embedded in one batch.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "align/align.h"
#include "api/api.h"
#include "detect/detect.h"
#include "landmarks/landmarks.h"

#define MAX_FACES 1000

/* dlib's chips pad the face by a quarter of its size on each side. */
#define CHIP_PADDING 0.25

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
        !(p.iou >= 0.0f && p.iou <= 1.0f) || (p.align != FACENET_ALIGN_SIMILARITY && p.align != FACENET_ALIGN_FACEAPI)) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT,
                "pipeline parameters out of range: max_faces 1..%d, min_score [0,1), iou [0,1], align 0 or 1",
                MAX_FACES);
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
    pl->ex.backend = fn_backend_default();
    pl->ex.pool = ctx->pool;
    pl->ex.arena = &pl->arena;
    *out = pl;
    return fn_ctx_report(ctx, &e);
}

void facenet_pipeline_free(facenet_pipeline *p) {
    if (!p) return;
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

/* The chip the embedding network sees for a face with these landmarks. */
static facenet_status make_chip(const facenet_pipeline *p, const facenet_image *img, const float *pts,
                                facenet_image *chip, fn_error *e) {
    if (p->p.align == FACENET_ALIGN_FACEAPI) {
        int r[4];
        fn_align_faceapi_rect(pts, img->width, img->height, r);
        facenet_status st = facenet_image_crop(NULL, img, r[0], r[1], r[2], r[3], chip);
        if (st != FACENET_OK)
            return fn_fail(e, st, "face-api crop %dx%d at (%d, %d) does not fit the image", r[2], r[3], r[0], r[1]);
        return FACENET_OK;
    }
    const int size = p->emb ? p->emb->input_size : 150;
    fn_affine a;
    if (fn_align_similarity_transform(pts, size, CHIP_PADDING, &a) != 0)
        return fn_fail(e, FACENET_ERR_INTERNAL, "the face's landmarks are degenerate; cannot align it");
    return fn_warp_affine(img, &a, size, chip, e);
}

static facenet_status run(facenet_pipeline *p, const facenet_image *img, facenet_face *faces, int cap, int *n,
                          fn_error *e) {
    facenet_timings t = {0, 0, 0, 0};
    p->t = t;
    if (check_image(img, e) != FACENET_OK) return e->status;
    fn_detect_opts o = fn_detect_default_opts(p->det);
    o.min_score = p->p.min_score;
    o.max_results = p->p.max_faces;
    if (p->p.iou > 0.0f) o.iou = p->p.iou;
    o.input_size = p->p.tiny_input_size;
    fn_face_box boxes[MAX_FACES];
    int nb = 0;
    double t0 = now_ms();
    fn_arena_reset(&p->arena);
    facenet_status st = fn_detect(p->det, &p->ex, img, &o, boxes, p->p.max_faces, &nb, e);
    double t1 = now_ms();
    p->t.detect_ms = t1 - t0;
    if (st != FACENET_OK) return st;
    if (nb > cap) nb = cap;
    const fn_landmark_origin origin = p->p.align == FACENET_ALIGN_FACEAPI ? FN_ORIGIN_FACEAPI : FN_ORIGIN_CROP;
    for (int i = 0; i < nb; i++) {
        facenet_face *f = &faces[i];
        memset(f, 0, sizeof *f);
        f->x = boxes[i].x;
        f->y = boxes[i].y;
        f->width = boxes[i].w;
        f->height = boxes[i].h;
        f->score = boxes[i].score;
        fn_arena_reset(&p->arena);
        st = fn_landmarks(p->lmk, &p->ex, img, &boxes[i], origin, f->landmarks, NULL, e);
        if (st != FACENET_OK) return st;
    }
    double t2 = now_ms();
    p->t.landmarks_ms = t2 - t1;
    *n = nb;
    if (!p->emb || nb == 0) return FACENET_OK;

    facenet_image *chips = calloc((size_t)nb, sizeof *chips);
    float *emb = malloc(sizeof(float) * (size_t)nb * p->emb->embedding_dim);
    if (!chips || !emb) {
        free(chips);
        free(emb);
        return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for %d face chips", nb);
    }
    for (int i = 0; i < nb && st == FACENET_OK; i++) st = make_chip(p, img, faces[i].landmarks, &chips[i], e);
    double t3 = now_ms();
    p->t.align_ms = t3 - t2;
    if (st == FACENET_OK) st = fn_embed_batch(p->emb, &p->ex, chips, nb, emb, p->p.embed_flags, e);
    p->t.embed_ms = now_ms() - t3;
    for (int i = 0; i < nb; i++) {
        if (st == FACENET_OK) {
            memcpy(faces[i].embedding, emb + (size_t)i * p->emb->embedding_dim,
                   sizeof(float) * (size_t)p->emb->embedding_dim);
            faces[i].has_embedding = 1;
        }
        facenet_image_free(&chips[i]);
    }
    free(chips);
    free(emb);
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
        make_chip(p, img, face->landmarks, chip, &e);
    return fn_ctx_report(p->ctx, &e);
}
