/*
 * jpeg.c - JPEG decoding with libjpeg(-turbo) through the classic libjpeg API.
 *
 * Pixels are meant to equal `djpeg -ppm` exactly, so the decoder keeps the
 * library's defaults (JDCT_ISLOW, fancy upsampling, no scaling) and asks for
 * JCS_RGB output for colour and greyscale files alike (grey is replicated).
 * CMYK and YCCK files are decoded to CMYK and converted as djpeg does
 * (Adobe inverted CMYK: R = C*K/255 rounded).
 *
 * libjpeg reports fatal errors through error_exit, which must not return:
 * ours formats the message and longjmps back. Everything that changes after
 * setjmp lives in a heap block (struct jpeg_dec) or in the caller's image,
 * never in a local of the function that called setjmp, so no value is left
 * indeterminate by the longjmp and nothing needs to be volatile.
 *
 * Hostile input is bounded three ways: the declared size is checked against
 * the caps before jpeg_start_decompress allocates, the library's own memory
 * is capped, and a progress monitor stops files with absurd numbers of
 * progressive scans (each scan re-walks the whole coefficient buffer).
 * libjpeg only warns about a premature end of data and pads the image with
 * grey; we refuse such files as truncated instead.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "core/pool.h"
#include "image/image.h"

/* Real progressive files have about 10 scans; 1000 is generous. */
#define FN_JPEG_MAX_SCANS 1000
/* libjpeg's own working memory. At the pixel cap a 4-component progressive
 * file needs about 512 MiB of coefficients. */
#define FN_JPEG_MAX_MEMORY (1024L * 1024L * 1024L)

struct jpeg_dec {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr jerr;
    struct jpeg_progress_mgr progress;
    jmp_buf jb;
    facenet_status status; /* set by the callbacks before they longjmp */
    char msg[FN_ERROR_MAX];
    JSAMPLE *row; /* one CMYK scanline */
};

static struct jpeg_dec *dec_of(j_common_ptr c) { return (struct jpeg_dec *)c->client_data; }

static void on_error_exit(j_common_ptr c) {
    struct jpeg_dec *d = dec_of(c);
    char text[JMSG_LENGTH_MAX];
    (*c->err->format_message)(c, text);
    switch (c->err->msg_code) {
    case JERR_OUT_OF_MEMORY:
        d->status = FACENET_ERR_NO_MEMORY;
        snprintf(d->msg, sizeof d->msg, "out of memory decoding the JPEG (%s)", text);
        break;
    case JERR_NO_BACKING_STORE: /* over FN_JPEG_MAX_MEMORY */
        d->status = FACENET_ERR_TOO_LARGE;
        snprintf(d->msg, sizeof d->msg, "the JPEG needs more than %ld MiB to decode",
                 FN_JPEG_MAX_MEMORY / (1024L * 1024L));
        break;
    case JERR_IMAGE_TOO_BIG: /* over 65500 a side: libjpeg checks before we can */
    case JERR_WIDTH_OVERFLOW: {
        fn_error size_err;
        fn_error_clear(&size_err);
        if (fn_image_check_size(d->cinfo.image_width, d->cinfo.image_height, &size_err) ==
            FACENET_ERR_TOO_LARGE) {
            d->status = FACENET_ERR_TOO_LARGE;
            snprintf(d->msg, sizeof d->msg, "%s", size_err.msg);
        } else {
            d->status = FACENET_ERR_FORMAT;
            snprintf(d->msg, sizeof d->msg, "corrupt JPEG (%s)", text);
        }
        break;
    }
    case JERR_SOF_UNSUPPORTED:
    case JERR_ARITH_NOTIMPL:
    case JERR_NOT_COMPILED:
    case JERR_NOTIMPL:
    case JERR_BAD_PRECISION: /* 12-bit JPEG */
    case JERR_CONVERSION_NOTIMPL:
        d->status = FACENET_ERR_UNSUPPORTED;
        snprintf(d->msg, sizeof d->msg, "unsupported JPEG (%s)", text);
        break;
    default:
        d->status = FACENET_ERR_FORMAT;
        snprintf(d->msg, sizeof d->msg, "corrupt JPEG (%s)", text);
        break;
    }
    longjmp(d->jb, 1);
}

/* Warnings: corrupt-data warnings are what djpeg tolerates too, but a
 * premature end of data means the rest of the image would be made up. */
static void on_emit_message(j_common_ptr c, int level) {
    if (level >= 0) return; /* trace messages */
    c->err->num_warnings++;
    if (c->err->msg_code == JWRN_JPEG_EOF) {
        struct jpeg_dec *d = dec_of(c);
        d->status = FACENET_ERR_FORMAT;
        snprintf(d->msg, sizeof d->msg, "truncated JPEG");
        longjmp(d->jb, 1);
    }
}

/* A library must not print to stderr. */
static void on_output_message(j_common_ptr c) { (void)c; }

static void on_progress(j_common_ptr c) {
    if (!c->is_decompressor) return;
    j_decompress_ptr di = (j_decompress_ptr)c;
    if (di->input_scan_number > FN_JPEG_MAX_SCANS) {
        struct jpeg_dec *d = dec_of(c);
        d->status = FACENET_ERR_FORMAT;
        snprintf(d->msg, sizeof d->msg, "corrupt JPEG (more than %d scans)", FN_JPEG_MAX_SCANS);
        longjmp(d->jb, 1);
    }
}

/* A decoder with our callbacks, before jpeg_create_decompress. */
static struct jpeg_dec *dec_new(void) {
    struct jpeg_dec *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    jpeg_std_error(&d->jerr);
    d->jerr.error_exit = on_error_exit;
    d->jerr.emit_message = on_emit_message;
    d->jerr.output_message = on_output_message;
    d->progress.progress_monitor = on_progress;
    d->cinfo.err = &d->jerr; /* errors inside jpeg_create_decompress need it already */
    d->cinfo.client_data = d;
    d->status = FACENET_OK;
    return d;
}

static void dec_free(struct jpeg_dec *d) {
    if (!d) return;
    jpeg_destroy_decompress(&d->cinfo); /* safe on a struct jpeg_create_decompress never finished */
    free(d->row);
    free(d);
}

/* A libjpeg error (d->status set by a callback) into e. */
static facenet_status dec_status(const struct jpeg_dec *d, facenet_status st, fn_error *e) {
    if (st != FACENET_OK && d->status != FACENET_OK) fn_fail(e, d->status, "%s", d->msg);
    return st;
}

/* Everything up to the first row: the header, the output colour space, the
 * size check and jpeg_start_decompress. Each function that calls into
 * libjpeg arms the decoder's jmp_buf itself, so that an error returns to a
 * frame that is still live, whichever thread runs it. */
static facenet_status dec_start(struct jpeg_dec *d, const uint8_t *data, size_t size, int *cmyk, fn_error *e) {
    if (setjmp(d->jb)) return d->status;

    j_decompress_ptr ci = &d->cinfo;
    jpeg_create_decompress(ci); /* keeps err and client_data, clears the rest */
    ci->progress = &d->progress;
    ci->mem->max_memory_to_use = FN_JPEG_MAX_MEMORY;
    jpeg_mem_src(ci, data, (unsigned long)size);
    jpeg_read_header(ci, TRUE);

    *cmyk = 0;
    switch (ci->jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB: ci->out_color_space = JCS_RGB; break;
    case JCS_CMYK:
    case JCS_YCCK:
        ci->out_color_space = JCS_CMYK;
        *cmyk = 1;
        break;
    default:
        return fn_fail(e, FACENET_ERR_UNSUPPORTED, "unsupported JPEG (%d colour components)",
                       ci->num_components);
    }
    /* No scaling, so the output size is the declared size: refuse it now,
     * before jpeg_start_decompress allocates buffers for it. */
    facenet_status st = fn_image_check_size(ci->image_width, ci->image_height, e);
    if (st != FACENET_OK) return st;

    jpeg_start_decompress(ci);
    if (ci->output_components != (*cmyk ? 4 : 3) || ci->output_width != ci->image_width ||
        ci->output_height != ci->image_height)
        return fn_fail(e, FACENET_ERR_INTERNAL, "libjpeg produced %d components at %ux%u",
                       ci->output_components, (unsigned)ci->output_width, (unsigned)ci->output_height);
    return FACENET_OK;
}

/* Rows [from, to) into out, which has the image's size. The rows before
 * `from` are skipped: libjpeg still decodes their entropy-coded data (it
 * must, to find where the next rows start) but not their pixels. */
static facenet_status dec_rows(struct jpeg_dec *d, int cmyk, unsigned from, unsigned to, facenet_image *out,
                               fn_error *e) {
    if (setjmp(d->jb)) return d->status;

    j_decompress_ptr ci = &d->cinfo;
    if (from > 0 && jpeg_skip_scanlines(ci, from) != from)
        return fn_fail(e, FACENET_ERR_FORMAT, "corrupt JPEG (cannot skip to row %u)", from);
    const size_t stride = (size_t)out->width * 3;
    if (cmyk && !d->row) {
        d->row = malloc((size_t)out->width * 4);
        if (!d->row) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory decoding the JPEG");
    }
    while (ci->output_scanline < to) {
        uint8_t *dst = out->data + (size_t)ci->output_scanline * stride;
        JSAMPROW row = cmyk ? d->row : dst;
        if (jpeg_read_scanlines(ci, &row, 1) != 1)
            return fn_fail(e, FACENET_ERR_FORMAT, "corrupt JPEG (no data for row %u)",
                           (unsigned)ci->output_scanline);
        if (cmyk) {
            /* (c*k + 127) / 255 equals djpeg's (int)(c*k/255.0 + 0.5) exactly */
            const JSAMPLE *src = d->row;
            for (int x = 0; x < out->width; x++, src += 4, dst += 3) {
                unsigned k = src[3];
                for (int ch = 0; ch < 3; ch++) dst[ch] = (uint8_t)((src[ch] * k + 127) / 255);
            }
        }
    }
    /* No jpeg_finish_decompress: every pixel is in, and it would only read
     * on to the EOI marker, refusing files whose last two bytes are lost. */
    return FACENET_OK;
}

/* Two threads decode a large single-scan photo: one the top half, the other
 * the bottom half after skipping the top. The skip still walks the top's
 * entropy-coded data, but that is less than half of the work (the inverse
 * DCT, upsampling and colour conversion are the rest), so a 1920 x 1448
 * photo takes about 5.5 ms instead of 9-10. The pixels are the same bytes
 * (test_image). A progressive file decodes all its scans before the first
 * row whichever rows are asked for, so it stays on one thread. */
#define SPLIT_MIN_PIXELS (512 * 1024)

typedef struct split_job {
    const uint8_t *data;
    size_t size;
    struct jpeg_dec *top;
    unsigned mid;
    facenet_image *out;
    facenet_status st[2];
    fn_error err[2];
} split_job;

static void split_task(void *arg, int task) {
    split_job *j = arg;
    fn_error *e = &j->err[task];
    if (task == 0) {
        j->st[0] = dec_status(j->top, dec_rows(j->top, 0, 0, j->mid, j->out, e), e);
        return;
    }
    struct jpeg_dec *d = dec_new();
    if (!d) {
        j->st[1] = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory decoding the JPEG");
        return;
    }
    int cmyk = 0;
    facenet_status st = dec_status(d, dec_start(d, j->data, j->size, &cmyk, e), e);
    if (st == FACENET_OK && (cmyk || d->cinfo.output_width != (unsigned)j->out->width ||
                             d->cinfo.output_height != (unsigned)j->out->height))
        st = fn_fail(e, FACENET_ERR_INTERNAL, "a second reading of the JPEG disagrees with the first");
    if (st == FACENET_OK) st = dec_status(d, dec_rows(d, 0, j->mid, d->cinfo.output_height, j->out, e), e);
    dec_free(d);
    j->st[1] = st;
}

facenet_status fn_jpeg_decode(const uint8_t *data, size_t size, fn_pool *pool, facenet_image *out, fn_error *e) {
    memset(out, 0, sizeof *out);
    if (size > ULONG_MAX) return fn_fail(e, FACENET_ERR_TOO_LARGE, "the JPEG is too large");
    struct jpeg_dec *d = dec_new();
    if (!d) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory decoding the JPEG");
    int cmyk = 0;
    facenet_status st = dec_status(d, dec_start(d, data, size, &cmyk, e), e);
    if (st == FACENET_OK) st = fn_image_alloc((int)d->cinfo.output_width, (int)d->cinfo.output_height, 3, out, e);
    if (st == FACENET_OK) {
        j_decompress_ptr ci = &d->cinfo;
        /* Halves on a boundary of the rows libjpeg decodes together. */
        const unsigned group = (unsigned)ci->max_v_samp_factor * DCTSIZE;
        const unsigned mid = ci->output_height / 2 / group * group;
        if (fn_pool_threads(pool) >= 2 && !cmyk && !jpeg_has_multiple_scans(ci) && mid > 0 &&
            (uint64_t)ci->output_width * ci->output_height >= SPLIT_MIN_PIXELS) {
            split_job j = {data, size, d, mid, out, {FACENET_OK, FACENET_OK}, {{0}}};
            fn_error_clear(&j.err[0]);
            fn_error_clear(&j.err[1]);
#if defined(_OPENMP)
            /* On OpenMP's team when the library has one (the oneDNN
             * backend's): its threads spin for a while after each
             * primitive, and the pool's second thread, started then, would
             * compete with them for the cores (decoding then took longer
             * than on one thread). */
#pragma omp parallel for schedule(dynamic, 1) num_threads(2)
            for (int t = 0; t < 2; t++) split_task(&j, t);
#else
            fn_pool_run(pool, 2, split_task, &j);
#endif
            /* The first error in the file's order, as one thread would meet it. */
            const int bad = j.st[0] != FACENET_OK ? 0 : 1;
            st = j.st[bad];
            if (st != FACENET_OK) fn_fail(e, st, "%s", j.err[bad].msg);
        } else {
            st = dec_status(d, dec_rows(d, cmyk, 0, ci->output_height, out, e), e);
        }
    }
    dec_free(d);
    if (st != FACENET_OK) {
        free(out->data);
        memset(out, 0, sizeof *out);
    }
    return st;
}
