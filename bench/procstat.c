/*
 * procstat.c - CPU time and resident memory of a process (procstat.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procstat.h"

long long
procstat_cpu_ticks(int pid)
{
	char path[64], buf[1024];
	if (pid > 0)
		snprintf(path, sizeof path, "/proc/%d/stat", pid);
	else
		snprintf(path, sizeof path, "/proc/self/stat");
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* the name may hold spaces */
	unsigned long long ut, st;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
	                        "%llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

long
procstat_rss_kb(int pid)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6)) {
			kb = atol(line + 6);
			break;
		}
	fclose(f);
	return kb;
}

double
procstat_cpu_share(long long t0, long long t1, double seconds)
{
	if (t0 < 0 || t1 < t0 || !(seconds > 0))
		return -1;
	return (double)(t1 - t0) / (double)sysconf(_SC_CLK_TCK) / seconds;
}
