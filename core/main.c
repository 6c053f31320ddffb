/*
 * main.c - the moongate process entry.
 *
 * The server (sockets, sessions, Lua services) arrives with the session
 * layer (issue 3). Until then this checks its arguments and that the
 * configuration file is readable, says so, and exits.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifndef MOONGATE_VERSION
#define MOONGATE_VERSION "0.0.0"
#endif

static void
usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [options] CONFIG\n"
		"\n"
		"Start the moongate game network server with the configuration\n"
		"file CONFIG (a Lua file returning a table; see config.lua).\n"
		"Not yet: the server arrives with the session layer (issue 3);\n"
		"today moongate only checks that CONFIG can be read.\n"
		"\n"
		"options:\n"
		"  -h, --help     show this help and exit\n"
		"  -v, --version  print the version and exit\n",
		prog);
}

int
main(int argc, char **argv)
{
	const char *prog = argc > 0 && argv[0] ? argv[0] : "moongate";
	const char *config = NULL;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout, prog);
			return 0;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--version")) {
			printf("moongate %s\n", MOONGATE_VERSION);
			return 0;
		} else if (!strcmp(a, "--")) {
			if (i + 1 < argc)
				config = argv[++i];
			if (i + 1 < argc)
				goto extra;
			break;
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "%s: unknown option '%s'\n", prog, a);
			usage(stderr, prog);
			return 2;
		} else if (config) {
			goto extra;
		} else {
			config = a;
		}
	}
	if (!config) {
		fprintf(stderr, "%s: no configuration file given\n", prog);
		usage(stderr, prog);
		return 2;
	}

	FILE *f = fopen(config, "r");
	if (!f) {
		fprintf(stderr, "%s: cannot open %s: %s\n", prog, config,
		        strerror(errno));
		return 1;
	}
	fclose(f);

	printf("moongate %s: configuration %s found, but there is no server to "
	       "start yet: it arrives with the session layer (issue 3). "
	       "Today moongate is the KCP core and its tests (make test).\n",
	       MOONGATE_VERSION, config);
	return 0;

extra:
	fprintf(stderr, "%s: only one configuration file may be given\n", prog);
	usage(stderr, prog);
	return 2;
}
