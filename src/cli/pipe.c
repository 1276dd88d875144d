/*
 * pipe.c - the options and set-up that the photo commands (detect, embed,
 * compare, align) share: which models, detector options, alignment.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char CLI_PIPE_OPTIONS[] =
    "  --detector ssd|tiny     SSD MobileNetV1 (default, accurate) or the tiny detector (fast)\n"
    "  --min-score S           keep faces the detector scores above S (default 0.5)\n"
    "  --max-faces N           at most N faces per photo, best first (default 100)\n"
    "  --iou T                 non-maximum suppression overlap (default: 0.5 SSD, 0.4 tiny)\n"
    "  --tiny-size N           tiny detector input, a multiple of 32 (default 416)\n"
    "  --landmarks full|tiny   the 68-point landmark model (default full)\n"
    "  --any-orientation       also find faces turned sideways or upside down (photos of unknown\n"
    "                          orientation without an EXIF tag); four times the detection work\n"
    "  --align similarity|faceapi\n"
    "                          how chips are cut: rotation-corrected to a template (default),\n"
    "                          or face-api's axis-aligned square (bit-for-bit parity with face-api)\n"
    "  --closeup auto|always|off\n"
    "                          search again with the photo shown smaller, for faces that fill\n"
    "                          much of it: when nothing was found (auto, default), always, never\n"
    "  --no-flip               embed the chip alone, not the mean of the chip and its mirror\n"
    "                          image (half the embedding work, a little less accurate)\n"
    "  --jitters N             embed each face from N chips: the aligned one and N-1 slightly\n"
    "                          turned, zoomed and shifted copies (dlib's num_jitters; N times the\n"
    "                          embedding work, a little more accurate; default 1)\n"
    "  --padding P             similarity alignment: margin around the face as a fraction of\n"
    "                          its size on each side (default 0.25, the network's training framing)\n"
    "  --model PATH            the embedding model (default dlib_resnet29.safetensors)\n"
    "  --int8                  run the embedding network in int8 (a model calibrated by\n"
    "                          `facenet quantize`; docs/performance.md)\n"
    "  --detector-model PATH, --landmark-model PATH   explicit detector and landmark models\n"
    "  --threads N             worker threads (default: all cores)\n";

void cli_pipe_defaults(cli_pipe_opts *o) {
    memset(o, 0, sizeof *o);
    o->params = facenet_pipeline_default_params();
    o->detector = "ssd";
    o->landmarks = "full";
}

static int parse_float(const char *opt, const char *s, float lo, float hi, float *out) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "facenet: %s needs a number from %g to %g, not '%s'\n", opt, lo, hi, s);
        return -1;
    }
    *out = (float)v;
    return 0;
}

int cli_pipe_option(cli_pipe_opts *o, int argc, char **argv, int *i) {
    int r = cli_common_option(&o->com, argc, argv, i);
    if (r != 0) return r;
    if (strcmp(argv[*i], "--any-orientation") == 0) {
        o->params.all_orientations = 1;
        return 1;
    }
    if (strcmp(argv[*i], "--no-flip") == 0) {
        o->params.embed_flags &= ~(unsigned)FACENET_EMBED_FLIP;
        return 1;
    }
    static const char *const WITH_VALUE[] = {"--detector", "--min-score", "--max-faces", "--iou", "--tiny-size",
                                             "--landmarks", "--align", "--padding", "--closeup", "--jitters",
                                             "--detector-model", "--landmark-model"};
    const char *a = argv[*i];
    size_t k;
    for (k = 0; k < sizeof WITH_VALUE / sizeof WITH_VALUE[0]; k++)
        if (strcmp(a, WITH_VALUE[k]) == 0) break;
    if (k == sizeof WITH_VALUE / sizeof WITH_VALUE[0]) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "facenet: %s needs a value\n", a);
        return -1;
    }
    const char *v = argv[++*i];
    if (strcmp(a, "--detector") == 0) {
        if (strcmp(v, "ssd") && strcmp(v, "tiny")) {
            fprintf(stderr, "facenet: --detector is ssd or tiny, not '%s'\n", v);
            return -1;
        }
        o->detector = v;
    } else if (strcmp(a, "--landmarks") == 0) {
        if (strcmp(v, "full") && strcmp(v, "tiny")) {
            fprintf(stderr, "facenet: --landmarks is full or tiny, not '%s'\n", v);
            return -1;
        }
        o->landmarks = v;
    } else if (strcmp(a, "--align") == 0) {
        if (strcmp(v, "similarity") == 0)
            o->params.align = FACENET_ALIGN_SIMILARITY;
        else if (strcmp(v, "faceapi") == 0)
            o->params.align = FACENET_ALIGN_FACEAPI;
        else {
            fprintf(stderr, "facenet: --align is similarity or faceapi, not '%s'\n", v);
            return -1;
        }
    } else if (strcmp(a, "--min-score") == 0) {
        return parse_float(a, v, 0.0f, 0.999f, &o->params.min_score) ? -1 : 1;
    } else if (strcmp(a, "--closeup") == 0) {
        if (strcmp(v, "auto") == 0)
            o->params.closeup = FACENET_CLOSEUP_IF_NONE;
        else if (strcmp(v, "always") == 0)
            o->params.closeup = FACENET_CLOSEUP_ALWAYS;
        else if (strcmp(v, "off") == 0)
            o->params.closeup = FACENET_CLOSEUP_OFF;
        else {
            fprintf(stderr, "facenet: --closeup is auto, always or off, not '%s'\n", v);
            return -1;
        }
    } else if (strcmp(a, "--padding") == 0) {
        return parse_float(a, v, 0.0f, 1.0f, &o->params.align_padding) ? -1 : 1;
    } else if (strcmp(a, "--jitters") == 0) {
        return cli_parse_int(a, v, 1, FACENET_MAX_JITTERS, &o->params.jitters) ? -1 : 1;
    } else if (strcmp(a, "--iou") == 0) {
        return parse_float(a, v, 0.01f, 1.0f, &o->params.iou) ? -1 : 1;
    } else if (strcmp(a, "--max-faces") == 0) {
        return cli_parse_int(a, v, 1, 1000, &o->params.max_faces) ? -1 : 1;
    } else if (strcmp(a, "--tiny-size") == 0) {
        if (cli_parse_int(a, v, 32, 4096, &o->params.tiny_input_size)) return -1;
        if (o->params.tiny_input_size % 32) {
            fprintf(stderr, "facenet: --tiny-size must be a multiple of 32\n");
            return -1;
        }
    } else if (strcmp(a, "--detector-model") == 0) {
        o->det_model = v;
    } else {
        o->lmk_model = v;
    }
    return 1;
}

const char *cli_detector_file(const char *detector) {
    return strcmp(detector, "tiny") == 0 ? "tiny_face_detector.safetensors" : "ssd_mobilenetv1.safetensors";
}

const char *cli_landmarks_file(const char *landmarks) {
    return strcmp(landmarks, "tiny") == 0 ? "face_landmark_68_tiny.safetensors" : "face_landmark_68.safetensors";
}

int cli_pipe_open(cli_pipe *p, const cli_pipe_opts *o, int embed) {
    memset(p, 0, sizeof *p);
    p->ctx = cli_ctx_precision(o->com.threads, o->com.int8);
    if (!p->ctx) return -1;
    p->det = cli_load_model(p->ctx, o->det_model, cli_detector_file(o->detector));
    if (p->det) p->lmk = cli_load_model(p->ctx, o->lmk_model, cli_landmarks_file(o->landmarks));
    if (p->lmk && embed) p->emb = cli_load_model(p->ctx, o->com.model, CLI_EMBEDDING_MODEL);
    if (!p->det || !p->lmk || (embed && !p->emb)) {
        cli_pipe_close(p);
        return -1;
    }
    facenet_pipeline_params params = o->params;
    params.embed = embed;
    facenet_status st = facenet_pipeline_create(p->ctx, p->det, p->lmk, p->emb, &params, &p->pl);
    if (st != FACENET_OK) {
        cli_error("pipeline", p->ctx, st);
        cli_pipe_close(p);
        return -1;
    }
    p->cap = params.max_faces;
    p->faces = calloc((size_t)p->cap, sizeof *p->faces);
    if (!p->faces) {
        cli_pipe_close(p);
        return -1;
    }
    return 0;
}

void cli_pipe_close(cli_pipe *p) {
    facenet_pipeline_free(p->pl);
    facenet_model_free(p->emb);
    facenet_model_free(p->lmk);
    facenet_model_free(p->det);
    facenet_ctx_free(p->ctx);
    free(p->faces);
    memset(p, 0, sizeof *p);
}

int cli_pipe_photo(cli_pipe *p, const char *cmd, const char *path, facenet_image *img, int *n) {
    *n = 0;
    memset(img, 0, sizeof *img);
    facenet_status st = facenet_image_load(p->ctx, path, img);
    if (st == FACENET_OK) st = facenet_pipeline_run(p->pl, img, p->faces, p->cap, n);
    if (st != FACENET_OK) {
        cli_error(cmd, p->ctx, st);
        facenet_image_free(img);
        return -1;
    }
    return 0;
}

void cli_json_face(FILE *f, const facenet_face *face, int with_landmarks, int with_embedding) {
    fprintf(f, "\"box\": {\"x\": %.3f, \"y\": %.3f, \"w\": %.3f, \"h\": %.3f}, \"score\": %.6f", face->x, face->y,
            face->width, face->height, face->score);
    if (with_landmarks) {
        fprintf(f, ", \"landmarks\": [");
        for (int k = 0; k < FACENET_LANDMARKS; k++)
            fprintf(f, "%s[%.2f, %.2f]", k ? ", " : "", face->landmarks[2 * k], face->landmarks[2 * k + 1]);
        fputc(']', f);
    }
    if (with_embedding && face->has_embedding) {
        fprintf(f, ", \"embedding\": ");
        cli_json_floats(f, face->embedding, FACENET_EMBEDDING_DIM);
    }
}

int cli_pipe_args(cli_pipe_opts *o, int argc, char **argv, const char *cmd, cli_own_option_fn own, void *user,
                  int need_files, char ***files, int *nfiles) {
    cli_pipe_defaults(o);
    *nfiles = 0;
    *files = calloc((size_t)argc + 1, sizeof **files);
    if (!*files) return -1;
    for (int i = 1; i < argc; i++) {
        int r = cli_pipe_option(o, argc, argv, &i);
        if (r == 0 && own) r = own(user, argc, argv, &i);
        if (r < 0) return -1;
        if (r > 0) continue;
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "facenet %s: unknown option %s\n", cmd, argv[i]);
            return -1;
        }
        (*files)[(*nfiles)++] = argv[i];
    }
    if (*nfiles == 0 && need_files) {
        fprintf(stderr, "facenet %s: no images given\n", cmd);
        return -1;
    }
    return 0;
}

const char *cli_stem(const char *path, char *buf, size_t cap) {
    const char *b = strrchr(path, '/');
    snprintf(buf, cap, "%s", b ? b + 1 : path);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = '\0';
    return buf;
}
