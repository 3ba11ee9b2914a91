/* Commands this build lacks say so plainly. */
#include <stdio.h>
#include <string.h>

#include "main/cli.h"

int cmd_not_built(const struct command *cmd, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cli_command_usage(cmd, stdout);
            return 0;
        }
    fprintf(stderr, "error: cdc %s is not available in this build (built without %s)\n", cmd->name,
            cmd->needs ? cmd->needs : "a library it needs");
    return 2;
}
