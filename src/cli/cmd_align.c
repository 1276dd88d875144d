/* cmd_align.c - `facenet align PHOTO... --out DIR`: write the aligned face chips. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char USAGE[] =
    "usage: facenet align [OPTIONS] --out DIR PHOTO...\n"
    "\n"
    "Write the aligned 150x150 chip of every face in each photo as DIR/NAME_I.png\n"
    "(NAME the photo's name without extension, I the face, best first), and print one\n"
    "JSON object per chip: {\"file\": \"p.jpg\", \"face\": 0, \"box\": {...}, \"chip\": \"DIR/p_0.png\"}.\n"
    "Training and evaluation read these chips.\n"
    "\n"
    "  --out DIR               where to write the chips (created if missing)\n";
static const char TAIL[] =
    "\nWith --align faceapi, chips are face-api's crop (any size, square unless at the border).\n"
    "Exit status: 0 done, 1 a photo could not be read or a chip written, 2 bad usage,\n"
    "3 a photo has no face.\n";

static int own_option(void *user, int argc, char **argv, int *i) {
    if (strcmp(argv[*i], "--out") != 0) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "facenet align: --out needs a value\n");
        return -1;
    }
    *(const char **)user = argv[++*i];
    return 1;
}

static int run(int argc, char **argv) {
    cli_pipe_opts o;
    const char *out = NULL;
    int nfiles = 0;
    char **files = NULL;
    if (cli_pipe_args(&o, argc, argv, "align", own_option, &out, 1, &files, &nfiles) != 0) goto usage_error;
    if (!out) {
        fprintf(stderr, "facenet align: --out DIR is required\n");
        goto usage_error;
    }
    struct stat st;
    if (stat(out, &st) != 0 && mkdir(out, 0777) != 0) {
        fprintf(stderr, "facenet align: cannot create %s\n", out);
        free(files);
        return CLI_FAIL;
    }
    cli_pipe p;
    if (cli_pipe_open(&p, &o, 0) != 0) {
        free(files);
        return CLI_FAIL;
    }
    int status = CLI_OK;
    for (int f = 0; f < nfiles; f++) {
        facenet_image img;
        int n;
        if (cli_pipe_photo(&p, "align", files[f], &img, &n) != 0) {
            status = CLI_FAIL;
            continue;
        }
        if (n == 0) {
            fprintf(stderr, "facenet align: %s: no face found\n", files[f]);
            if (status == CLI_OK) status = CLI_NO_FACE;
        }
        char stem[1024];
        cli_stem(files[f], stem, sizeof stem);
        for (int i = 0; i < n; i++) {
            facenet_image chip = {0};
            char path[4096];
            snprintf(path, sizeof path, "%s/%s_%d.png", out, stem, i);
            facenet_status s = facenet_pipeline_chip(p.pl, &img, &p.faces[i], &chip);
            if (s == FACENET_OK) s = facenet_image_save(p.ctx, &chip, path);
            facenet_image_free(&chip);
            if (s != FACENET_OK) {
                cli_error("align", p.ctx, s);
                status = CLI_FAIL;
                continue;
            }
            printf("{\"file\": ");
            cli_json_string(stdout, files[f]);
            printf(", \"face\": %d, ", i);
            cli_json_face(stdout, &p.faces[i], 0, 0);
            printf(", \"chip\": ");
            cli_json_string(stdout, path);
            printf("}\n");
        }
        facenet_image_free(&img);
    }
    if (fflush(stdout) != 0) status = CLI_FAIL;
    cli_pipe_close(&p);
    free(files);
    return status;
usage_error:
    cli_usage(&cli_cmd_align, stderr);
    free(files);
    return CLI_USAGE;
}

const cli_command cli_cmd_align = {"align", "write the aligned face chips of photos", USAGE, 1, TAIL, run};
