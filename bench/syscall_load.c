/* A syscall-heavy workload for the sandbox overhead benchmark: stat, open,
 * read, close and getppid in a loop, timed from inside so process start-up
 * is not counted. Prints "elapsed_ns=N". */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  long iterations = argc > 1 ? atol(argv[1]) : 200000;
  struct timespec a, b;
  char buf[64];
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < iterations; ++i) {
    struct stat st;
    if (stat("/usr/bin/env", &st) != 0) return 1;
    int fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 1;
    if (read(fd, buf, sizeof buf) < 0) return 1;
    close(fd);
    (void)getppid();
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("elapsed_ns=%lld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
  return 0;
}
