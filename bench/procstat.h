/*
 * procstat.h - what the benchmarks read about a process from /proc.
 */
#ifndef MOONGATE_BENCH_PROCSTAT_H
#define MOONGATE_BENCH_PROCSTAT_H

/* utime + stime of pid (0: this process) in clock ticks, or -1. */
long long procstat_cpu_ticks(int pid);
/* VmRSS of pid in kB, or -1. */
long procstat_rss_kb(int pid);
/* The fraction of one core used between two procstat_cpu_ticks readings
 * taken seconds apart; -1 when either reading failed. */
double procstat_cpu_share(long long t0, long long t1, double seconds);

#endif
