/*
 * cmd_compare.c - `facenet compare A B`: are these the same person?
 *
 * Compares the most prominent face (the largest box) of each photo, or with
 * --all every face of A against every face of B. The exit status is the
 * verdict, so scripts can use it.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char USAGE[] =
    "usage: facenet compare [OPTIONS] PHOTO_A PHOTO_B\n"
    "\n"
    "Distance between the most prominent face (the largest) of each photo, the\n"
    "threshold and the verdict. With --all, every face of A against every face of B.\n"
    "\n"
    "  --all                   compare every pair of faces\n"
    "  --threshold T           same person when the distance is below T (default: the\n"
    "                          model's threshold, from its metadata)\n"
    "  --json                  JSON instead of text\n";
static const char TAIL[] =
    "\nExit status: 0 same person (with --all: some pair is), 1 different, 2 error\n"
    "(unreadable photo, a photo without a face, bad usage).\n";

static int largest(const facenet_face *f, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (f[i].width * f[i].height > f[best].width * f[best].height) best = i;
    return best;
}

static int run(int argc, char **argv) {
    cli_pipe_opts o;
    cli_pipe_defaults(&o);
    int all = 0, json = 0, npos = 0;
    float threshold = 0.0f;
    const char *pos[2] = {NULL, NULL};
    for (int i = 1; i < argc; i++) {
        int r = cli_pipe_option(&o, argc, argv, &i);
        if (r < 0) goto usage_error;
        if (r > 0) continue;
        if (strcmp(argv[i], "--all") == 0)
            all = 1;
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--threshold") == 0 && i + 1 < argc) {
            char *end;
            threshold = strtof(argv[++i], &end);
            if (*end || !(threshold > 0.0f && threshold < 4.0f)) {
                fprintf(stderr, "facenet compare: --threshold needs a distance between 0 and 4\n");
                goto usage_error;
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "facenet compare: unknown option %s\n", argv[i]);
            goto usage_error;
        } else if (npos < 2)
            pos[npos++] = argv[i];
        else {
            fprintf(stderr, "facenet compare: more than two photos given\n");
            goto usage_error;
        }
    }
    if (npos != 2) {
        fprintf(stderr, "facenet compare: need two photos\n");
        goto usage_error;
    }
    cli_pipe p;
    if (cli_pipe_open(&p, &o, 1) != 0) return CLI_USAGE;
    if (threshold == 0.0f) threshold = facenet_model_threshold(p.emb);
    facenet_face *faces[2] = {NULL, NULL};
    int n[2] = {0, 0}, status = CLI_USAGE;
    for (int k = 0; k < 2; k++) {
        facenet_image img;
        if (cli_pipe_photo(&p, "compare", pos[k], &img, &n[k]) != 0) goto done;
        facenet_image_free(&img);
        if (n[k] == 0) {
            fprintf(stderr, "facenet compare: %s: no face found\n", pos[k]);
            goto done;
        }
        faces[k] = malloc(sizeof(facenet_face) * (size_t)n[k]);
        if (!faces[k]) goto done;
        memcpy(faces[k], p.faces, sizeof(facenet_face) * (size_t)n[k]);
    }
    status = 1;
    int ia0 = all ? 0 : largest(faces[0], n[0]), ia1 = all ? n[0] : ia0 + 1;
    int ib0 = all ? 0 : largest(faces[1], n[1]), ib1 = all ? n[1] : ib0 + 1;
    for (int a = ia0; a < ia1; a++)
        for (int b = ib0; b < ib1; b++) {
            float d = facenet_distance(faces[0][a].embedding, faces[1][b].embedding, FACENET_EMBEDDING_DIM);
            int same = d < threshold;
            if (same) status = 0;
            if (json) {
                printf("{\"a\": ");
                cli_json_string(stdout, pos[0]);
                printf(", \"a_face\": %d, \"b\": ", a);
                cli_json_string(stdout, pos[1]);
                printf(", \"b_face\": %d, \"distance\": %.6f, \"threshold\": %.6f, \"same\": %s}\n", b, d, threshold,
                       same ? "true" : "false");
            } else {
                printf("%s face %d vs %s face %d: distance %.4f, threshold %.4f: %s\n", pos[0], a, pos[1], b, d,
                       threshold, same ? "same person" : "different people");
            }
        }
    if (fflush(stdout) != 0) status = CLI_USAGE;
done:
    free(faces[0]);
    free(faces[1]);
    cli_pipe_close(&p);
    return status;
usage_error:
    cli_usage(&cli_cmd_compare, stderr);
    return CLI_USAGE;
}

const cli_command cli_cmd_compare = {"compare", "same person or not? (exit status 0 same, 1 different, 2 error)",
                                     USAGE, 1, TAIL, run};
