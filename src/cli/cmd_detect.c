/* cmd_detect.c - `facenet detect PHOTO...`: faces, scores and landmarks as JSON. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char USAGE[] =
    "usage: facenet detect [OPTIONS] PHOTO...\n"
    "\n"
    "Find the faces in each photo: one JSON object per photo,\n"
    "  {\"file\": \"p.jpg\", \"width\": W, \"height\": H, \"faces\": [{\"box\": {x, y, w, h},\n"
    "   \"score\": s, \"landmarks\": [[x, y] x 68]}, ...]}\n"
    "in image pixels, best score first. JPEG EXIF orientation is applied first.\n"
    "\n"
    "  --draw OUT.png          save the photo with boxes and landmarks drawn; with several\n"
    "                          photos, OUT is a folder and each is saved as OUT/NAME.png\n";
static const char TAIL[] =
    "\nExit status: 0 done, 1 a photo could not be read, 2 bad usage, 3 a photo has no face.\n";

static int own_option(void *user, int argc, char **argv, int *i) {
    if (strcmp(argv[*i], "--draw") != 0) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "facenet detect: --draw needs a value\n");
        return -1;
    }
    *(const char **)user = argv[++*i];
    return 1;
}

static int run(int argc, char **argv) {
    cli_pipe_opts o;
    const char *draw = NULL;
    int nfiles = 0;
    char **files = NULL;
    if (cli_pipe_args(&o, argc, argv, "detect", own_option, &draw, 1, &files, &nfiles) != 0) goto usage_error;
    struct stat st;
    if (draw && nfiles > 1 && (stat(draw, &st) != 0 || !S_ISDIR(st.st_mode))) {
        fprintf(stderr, "facenet detect: with several photos, --draw names an existing folder\n");
        goto usage_error;
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
        if (cli_pipe_photo(&p, "detect", files[f], &img, &n) != 0) {
            status = CLI_FAIL;
            continue;
        }
        printf("{\"file\": ");
        cli_json_string(stdout, files[f]);
        printf(", \"width\": %d, \"height\": %d, \"faces\": [", img.width, img.height);
        for (int i = 0; i < n; i++) {
            printf("%s{", i ? ", " : "");
            cli_json_face(stdout, &p.faces[i], 1, 0);
            printf("}");
        }
        printf("]}\n");
        if (n == 0 && status == CLI_OK) status = CLI_NO_FACE;
        if (draw) {
            char out[4096], stem[1024];
            if (nfiles > 1)
                snprintf(out, sizeof out, "%s/%s.png", draw, cli_stem(files[f], stem, sizeof stem));
            else
                snprintf(out, sizeof out, "%s", draw);
            facenet_draw_faces(&img, p.faces, n);
            facenet_status s = facenet_image_save(p.ctx, &img, out);
            if (s != FACENET_OK) {
                cli_error("detect", p.ctx, s);
                status = CLI_FAIL;
            }
        }
        facenet_image_free(&img);
    }
    if (fflush(stdout) != 0) status = CLI_FAIL;
    cli_pipe_close(&p);
    free(files);
    return status;
usage_error:
    cli_usage(&cli_cmd_detect, stderr);
    free(files);
    return CLI_USAGE;
}

const cli_command cli_cmd_detect = {"detect", "find faces and their 68 landmarks in photos", USAGE, 1, TAIL, run};
