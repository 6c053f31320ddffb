/*
 * replay.h - the replay driver shared by the fuzz targets, so `make test`
 * runs each target under gcc without libFuzzer:
 *
 *   NAME [--mutations N] FILE|DIR...
 *
 * runs each file (each regular file of each DIR, in name order), then N
 * deterministic mutations of it (bit flips, byte sets, increments,
 * truncation), and fails when there was nothing to run.
 *
 * Include it once, after LLVMFuzzerTestOneInput, where the target defines
 * `static const char *where` (its check macro prints it). Before including:
 *   FUZZ_TRUNC_MIN              shortest truncation a mutation may make
 *   FUZZ_FIXUP(mut, buf, m)     optional: adjust mutation m of buf
 * Then call fuzz_replay_main(argc, argv, "name") from main.
 */
#ifndef MOONGATE_FUZZ_REPLAY_H
#define MOONGATE_FUZZ_REPLAY_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_TRUNC_MIN
#define FUZZ_TRUNC_MIN 1
#endif
#ifndef FUZZ_FIXUP
#define FUZZ_FIXUP(mut, buf, m) ((void)0)
#endif

static unsigned long nfiles, nruns;
static char wherebuf[4200];

static uint64_t
xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void
run_file(const char *path, long mutations)
{
	static unsigned char buf[1 << 16], mut[1 << 16];
	FILE *f = fopen(path, "rb");
	size_t n;
	long m;

	if (!f) {
		perror(path);
		exit(1);
	}
	n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	snprintf(wherebuf, sizeof wherebuf, "in %s", path);
	where = wherebuf;
	LLVMFuzzerTestOneInput(buf, n);
	nfiles++;
	nruns++;

	uint64_t seed = 0x9e3779b97f4a7c15ull ^ n;
	for (m = 0; m < mutations && n > 0; m++) {
		size_t len = n, k, edits;
		memcpy(mut, buf, n);
		edits = 1 + xorshift(&seed) % 4;
		for (k = 0; k < edits; k++) {
			uint64_t r = xorshift(&seed);
			size_t pos = (size_t)(r >> 8) % len;
			switch (r & 3) {
			case 0: mut[pos] ^= (unsigned char)(1u << ((r >> 4) & 7)); break;
			case 1: mut[pos] = (unsigned char)(r >> 40); break;
			case 2: if (pos > FUZZ_TRUNC_MIN) len = pos; break;
			case 3: mut[pos] = (unsigned char)(mut[pos] + 1); break;
			}
		}
		FUZZ_FIXUP(mut, buf, m);
		snprintf(wherebuf, sizeof wherebuf, "in mutation %ld of %s",
		         m, path);
		LLVMFuzzerTestOneInput(mut, len);
		nruns++;
	}
	where = "";
}

static int
cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
run_dir(const char *dir, long mutations)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0, i;

	if (!d) {
		perror(dir);
		exit(1);
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			names = realloc(names, cap * sizeof *names);
			if (!names)
				abort();
		}
		size_t len = strlen(dir) + strlen(e->d_name) + 2;
		names[n] = malloc(len);
		if (!names[n])
			abort();
		snprintf(names[n++], len, "%s/%s", dir, e->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, cmpstr);
	for (i = 0; i < n; i++) {
		struct stat sb;
		if (stat(names[i], &sb) == 0 && S_ISREG(sb.st_mode))
			run_file(names[i], mutations);
		free(names[i]);
	}
	free(names);
}

static int
fuzz_replay_main(int argc, char **argv, const char *name)
{
	long mutations = 0;

	for (int i = 1; i < argc; i++) {
		struct stat sb;
		if (!strcmp(argv[i], "--mutations") && i + 1 < argc) {
			mutations = strtol(argv[++i], NULL, 10);
			continue;
		}
		if (stat(argv[i], &sb) != 0) {
			perror(argv[i]);
			return 1;
		}
		if (S_ISDIR(sb.st_mode))
			run_dir(argv[i], mutations);
		else
			run_file(argv[i], mutations);
	}
	if (nfiles == 0) {
		fprintf(stderr, "usage: %s [--mutations N] FILE|DIR...: "
		        "no input file found\n", argv[0]);
		return 1;
	}
	printf("%s: %lu inputs (%lu files, %lu mutations) ran clean\n", name,
	       nruns, nfiles, nruns - nfiles);
	return 0;
}

#endif
