/*
 * cmd_embed.c - `facenet embed`: 128-d embeddings as JSON lines, of every
 * face in photos (detect, align, embed) or of ready face chips (--chip).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char USAGE[] =
    "usage: facenet embed [OPTIONS] PHOTO...\n"
    "       facenet embed --chip [--raw] [--model PATH] [--threads N] [--int8] IMAGE...\n"
    "\n"
    "Print the 128-d embedding of every face in each photo, one JSON object per face:\n"
    "  {\"file\": \"p.jpg\", \"face\": 0, \"box\": {...}, \"score\": s, \"embedding\": [...]}\n"
    "faces best first. With --chip the images already are face chips (tightly framed\n"
    "faces); each is padded to a square and resized to the network's 150x150 input:\n"
    "  {\"file\": \"a.png\", \"width\": 150, \"height\": 150, \"embedding\": [...]}\n"
    "\n"
    "  --chip                  the images are face chips: no detection or alignment\n"
    "  --raw                   the network's raw output (face-api's descriptor, norm ~1.4)\n"
    "                          instead of the L2-normalized embedding\n";
static const char TAIL[] =
    "\nImages: JPEG, PNG, binary PPM/PGM. Exit status: 0 done, 1 an image could not be\n"
    "read (the others are still embedded), 2 bad usage, 3 a photo has no face.\n";

#define BATCH 16

static int embed_chips(const cli_common *com, unsigned flags, char **files, int nfiles) {
    facenet_ctx *ctx = cli_ctx_precision(com->threads, com->int8);
    facenet_model *model = ctx ? cli_load_model(ctx, com->model, CLI_EMBEDDING_MODEL) : NULL;
    facenet_session *s = NULL;
    facenet_status sst = model ? facenet_session_create(ctx, model, &s) : FACENET_OK;
    if (sst != FACENET_OK) cli_error("embed", ctx, sst);
    int status = s ? CLI_OK : CLI_FAIL;
    const int dim = s ? facenet_model_embedding_dim(model) : 0;
    facenet_image imgs[BATCH];
    const char *names[BATCH];
    float *emb = s ? malloc(sizeof(float) * (size_t)dim * BATCH) : NULL;
    if (s && !emb) status = CLI_FAIL;
    for (int start = 0; emb && start < nfiles; start += BATCH) {
        int nb = 0;
        for (int i = start; i < nfiles && i < start + BATCH; i++) {
            memset(&imgs[nb], 0, sizeof imgs[nb]);
            facenet_status st = facenet_image_load(ctx, files[i], &imgs[nb]);
            if (st != FACENET_OK) {
                cli_error("embed", ctx, st);
                status = CLI_FAIL;
                continue;
            }
            names[nb++] = files[i];
        }
        facenet_status st = facenet_embed_chips(s, imgs, nb, emb, flags);
        if (st != FACENET_OK) {
            cli_error("embed", ctx, st);
            status = CLI_FAIL;
        }
        for (int i = 0; i < nb; i++) {
            if (st == FACENET_OK) {
                printf("{\"file\": ");
                cli_json_string(stdout, names[i]);
                printf(", \"width\": %d, \"height\": %d, \"embedding\": ", imgs[i].width, imgs[i].height);
                cli_json_floats(stdout, emb + (size_t)i * dim, dim);
                printf("}\n");
            }
            facenet_image_free(&imgs[i]);
        }
    }
    free(emb);
    facenet_session_free(s);
    facenet_model_free(model);
    facenet_ctx_free(ctx);
    return status;
}

static int embed_photos(const cli_pipe_opts *o, char **files, int nfiles) {
    cli_pipe p;
    if (cli_pipe_open(&p, o, 1) != 0) return CLI_FAIL;
    int status = CLI_OK;
    for (int f = 0; f < nfiles; f++) {
        facenet_image img;
        int n;
        if (cli_pipe_photo(&p, "embed", files[f], &img, &n) != 0) {
            status = CLI_FAIL;
            continue;
        }
        if (n == 0) {
            fprintf(stderr, "facenet embed: %s: no face found\n", files[f]);
            if (status == CLI_OK) status = CLI_NO_FACE;
        }
        for (int i = 0; i < n; i++) {
            printf("{\"file\": ");
            cli_json_string(stdout, files[f]);
            printf(", \"face\": %d, ", i);
            cli_json_face(stdout, &p.faces[i], 0, 1);
            printf("}\n");
        }
        facenet_image_free(&img);
    }
    cli_pipe_close(&p);
    return status;
}

typedef struct embed_flags {
    int chip, raw;
} embed_flags;

static int own_option(void *user, int argc, char **argv, int *i) {
    (void)argc;
    embed_flags *f = user;
    if (strcmp(argv[*i], "--chip") == 0) return f->chip = 1;
    if (strcmp(argv[*i], "--raw") == 0) return f->raw = 1;
    return 0;
}

static int run(int argc, char **argv) {
    cli_pipe_opts o;
    embed_flags fl = {0, 0};
    int nfiles = 0;
    char **files = NULL;
    if (cli_pipe_args(&o, argc, argv, "embed", own_option, &fl, 1, &files, &nfiles) != 0) goto usage_error;
    if (fl.raw) o.params.embed_flags |= FACENET_EMBED_RAW;
    int status = fl.chip ? embed_chips(&o.com, o.params.embed_flags, files, nfiles) : embed_photos(&o, files, nfiles);
    if (fflush(stdout) != 0) status = CLI_FAIL;
    free(files);
    return status;
usage_error:
    cli_usage(&cli_cmd_embed, stderr);
    free(files);
    return CLI_USAGE;
}

const cli_command cli_cmd_embed = {"embed", "128-d embeddings of the faces in photos, or of face chips", USAGE, 1,
                                   TAIL, run};
