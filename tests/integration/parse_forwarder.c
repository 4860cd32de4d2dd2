/* A stand-in for gatehouse-parse in the integration tests
 * (parse_isolation.sh): it reads the request, crashes when the request
 * holds "PARSER-CRASH-ME", hangs on "PARSER-HANG-ME", and otherwise hands
 * the same request to the real parser (GH_REAL_PARSER), so policies and
 * ordinary jobs parse as they always do. The broker runs it exactly as it
 * runs the real one (nobody, no_new_privs, limits). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _STR(x) #x
#define STR(x) _STR(x)

static char req[2 << 20];

int main(void) {
  size_t got = 0;
  ssize_t n;
  while (got < sizeof req && (n = read(0, req + got, sizeof req - got)) > 0) got += (size_t)n;
  if (memmem(req, got, "PARSER-CRASH-ME", 15)) {
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
  }
  if (memmem(req, got, "PARSER-HANG-ME", 14))
    for (;;) pause();
  /* The child's file-size limit is 0 (no memfd to replay it from): a
   * helper process feeds the request back through a pipe. */
  int p[2];
  if (pipe(p) != 0) _exit(9);
  pid_t feeder = fork();
  if (feeder < 0) _exit(9);
  if (feeder == 0) {
    close(p[0]);
    size_t off = 0;
    while (off < got && (n = write(p[1], req + off, got - off)) > 0) off += (size_t)n;
    _exit(0);
  }
  close(p[1]);
  if (dup2(p[0], 0) != 0) _exit(9);
  char *const argv[] = {(char *)"gatehouse-parse", NULL};
  char *const envp[] = {NULL};
  execve(STR(GH_REAL_PARSER), argv, envp);
  _exit(9);
}
