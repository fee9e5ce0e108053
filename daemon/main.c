/* main.c - the `ssld` binary: hands argv to the command table (cli/commands.h) and turns the
 * command's status into the exit code. Bare `ssld` prints the table; serving is `ssld serve`
 * (serve.c). Nothing else lives here.
 */
#include "../cli/commands.h"

int main(int argc, char **argv)
{
	return cli_dispatch(argc, argv);
}
