/*
 * main.c - the facenet command: dispatch to subcommands, help and version.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

const char *cli_argv0 = "facenet";

static const cli_command *const COMMANDS[] = {&cli_cmd_detect, &cli_cmd_embed, &cli_cmd_compare,
                                              &cli_cmd_align,  &cli_cmd_convert, &cli_cmd_bench, &cli_cmd_eval, &cli_cmd_train,
                                              &cli_cmd_quantize};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static const cli_command *find(const char *name) {
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(COMMANDS[i]->name, name) == 0) return COMMANDS[i];
    return NULL;
}

void cli_usage(const cli_command *c, FILE *f) {
    fputs(c->usage, f);
    if (c->photo_options) fputs(CLI_PIPE_OPTIONS, f);
    if (c->tail) fputs(c->tail, f);
}

static void overview(FILE *f) {
    fprintf(f,
            "facenet %s - face recognition: embeddings on the unit sphere, compared by distance\n\n"
            "usage: facenet COMMAND [OPTIONS] [ARGS]\n\n"
            "commands:\n",
            facenet_version());
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", COMMANDS[i]->name, COMMANDS[i]->summary);
    fprintf(f, "  %-10s %s\n", "help", "show this overview, or `facenet help COMMAND` for one command");
    fprintf(f, "\nfacenet --version prints the version. Models are looked up in $FACENET_MODEL_DIR, ./models,\n"
               "and beside the executable; scripts/setup.sh fetches and converts them.\n");
}

static int help(int argc, char **argv) {
    if (argc < 3) {
        overview(stdout);
        return CLI_OK;
    }
    const cli_command *c = find(argv[2]);
    if (!c) {
        fprintf(stderr, "facenet help: no command '%s'; `facenet help` lists them\n", argv[2]);
        return CLI_USAGE;
    }
    cli_usage(c, stdout);
    return CLI_OK;
}

int main(int argc, char **argv) {
    if (argc > 0 && argv[0]) cli_argv0 = argv[0];
    if (argc < 2) {
        overview(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("facenet %s\n", facenet_version());
        return CLI_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) return help(argc, argv);
    const cli_command *c = find(cmd);
    if (!c) {
        fprintf(stderr, "facenet: unknown command '%s'; `facenet help` lists the commands\n", cmd);
        return CLI_USAGE;
    }
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cli_usage(c, stdout);
            return CLI_OK;
        }
    return c->run(argc - 1, argv + 1);
}
